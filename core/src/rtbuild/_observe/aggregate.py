"""``rtbuild metrics``'s figures, aggregated one record at a time in bounded memory.

A group (and the total) keeps counts, a bounded sample of durations for the percentiles
and a bounded table of steps; never the records. Percentiles are exact (numpy's default
interpolation) while a group has at most :data:`SAMPLE` builds (:data:`TOTAL_SAMPLE` for
the total), and past that are taken over a uniform sample of that many (reservoir
sampling, seeded: the same file gives the same report). The slowest-steps table is exact
while a group has at most :data:`STEP_NAMES` distinct steps; past that the half with the
least time goes. Sizes over time (one entry per build) are kept only when asked for.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from rtbuild._observe.profile import counted_steps

#: Durations kept per group for its percentiles (exact up to this many builds).
SAMPLE = 4096
#: The same for the total over every group.
TOTAL_SAMPLE = 65536
#: Distinct steps kept per group for its slowest steps (exact up to this many).
STEP_NAMES = 256
#: The same for the total.
TOTAL_STEP_NAMES = 4096


class Sample:
    """A uniform sample of at most ``size`` numbers: all of them while there are no more."""

    __slots__ = ("_random", "count", "size", "values")

    def __init__(self, size: int) -> None:
        self.size, self.count = size, 0
        self.values = array("d")
        self._random = random.Random(size)  # seeded: one file, one report

    def add(self, value: float) -> None:
        self.count += 1
        if len(self.values) < self.size:
            self.values.append(value)
            return
        slot = self._random.randrange(self.count)  # Algorithm R
        if slot < self.size:
            self.values[slot] = value

    def percentile(self, q: float) -> float | None:
        return percentile(self.values, q)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


def step_key(step: Mapping[str, Any]) -> str:
    """What a step is grouped by: its unexpanded Dockerfile text where the backend recorded
    it (``source``: ``RUN echo $X`` rather than one row per value of ``X``), in the
    position its name gives (``[2/3] RUN echo $X``); else its name."""
    name = str(step.get("name"))
    source = step.get("source")
    if not isinstance(source, str) or not source:
        return name
    if name.startswith("[") and "] " in name:
        return f"{name[: name.index('] ') + 2]}{source}"
    return source


class Steps:
    """Per step: runs, cached runs, total and longest time; at most ``limit`` steps."""

    __slots__ = ("limit", "rows")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows: dict[str, list[float]] = {}  # key -> [runs, cached, total_s, max_s]

    def add(self, key: str, duration: float, cached: bool) -> None:
        row = self.rows.get(key)
        if row is None:
            if len(self.rows) >= self.limit:
                self._shed()
            row = self.rows[key] = [0, 0, 0.0, duration]
        row[0] += 1
        row[1] += 1 if cached else 0
        row[2] += duration
        row[3] = max(row[3], duration)

    def _shed(self) -> None:
        """Keep the half with the most time (what the slowest steps can still show)."""
        ranked = sorted(self.rows.items(), key=lambda item: -item[1][2])
        self.rows = dict(ranked[: self.limit // 2])

    def slowest(self, count: int = 5) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [
            {
                "name": name,
                "runs": int(runs),
                "cached": int(cached),
                "total_s": round(total, 3),
                "mean_s": round(total / runs, 3),
                "max_s": round(longest, 3),
            }
            for name, (runs, cached, total, longest) in self.rows.items()
        ]
        rows.sort(key=lambda row: (-float(row["total_s"]), str(row["name"])))
        return rows[:count]


def _order(record: Mapping[str, Any]) -> tuple[float, int]:
    return (float(record["_t"]), int(record.get("_seq", 0)))


class Group:
    """One group's figures, one record at a time (records in any order: the time and the
    line's place in the file say which is first and last)."""

    def __init__(self, *, sample: int = SAMPLE, step_names: int = STEP_NAMES, sizes: bool = False) -> None:
        self.builds = self.succeeded = self.cached = 0
        self.durations, self.built = Sample(sample), Sample(sample)
        self.counted = self.counted_hits = 0
        self.steps = Steps(step_names)
        self.failures: dict[str, list[Any]] = {}  # key -> [count, first seen]
        self.first: tuple[tuple[float, int], str] | None = None
        self.last: tuple[tuple[float, int], str] | None = None
        self.last_size: tuple[tuple[float, int], int] | None = None
        self.sizes: list[tuple[tuple[float, int], str, int]] | None = [] if sizes else None

    def add(self, record: Mapping[str, Any]) -> None:
        order, stamp = _order(record), str(record["timestamp"])
        self.builds += 1
        if self.first is None or order < self.first[0]:
            self.first = (order, stamp)
        if self.last is None or order >= self.last[0]:  # of equal ones, the later line
            self.last = (order, stamp)
        if not record.get("success"):
            key = f"{record.get('error_class') or 'error'} at {record.get('failed_step') or '?'}"
            seen = self.failures.setdefault(key, [0, order])
            seen[0], seen[1] = seen[0] + 1, min(seen[1], order)
            return
        self.succeeded += 1
        self.cached += 1 if record.get("cached") else 0
        duration = record.get("duration_s")
        if isinstance(duration, int | float):
            self.durations.add(float(duration))
            if not record.get("cached"):
                self.built.add(float(duration))
        steps = record.get("steps") or []
        for step in counted_steps(steps):
            self.counted += 1
            self.counted_hits += 1 if step.get("cached") else 0
        for step in steps:
            if isinstance(step, Mapping) and not step.get("internal"):
                self.steps.add(step_key(step), float(step.get("duration_s") or 0.0), bool(step.get("cached")))
        size = record.get("size_bytes")
        if isinstance(size, int):
            if self.last_size is None or order >= self.last_size[0]:
                self.last_size = (order, size)
            if self.sizes is not None:
                self.sizes.append((order, stamp, size))

    def summary(self) -> dict[str, Any]:
        ok, builds = self.succeeded, self.builds
        failures = sorted(self.failures.items(), key=lambda item: (-item[1][0], item[1][1]))
        out: dict[str, Any] = {
            "builds": builds,
            "succeeded": ok,
            "failed": builds - ok,
            "success_rate": round(ok / builds, 3) if builds else None,
            "duration_p50_s": self.durations.percentile(0.5),
            "duration_p95_s": self.durations.percentile(0.95),
            "built_p50_s": self.built.percentile(0.5),
            "built_p95_s": self.built.percentile(0.95),
            "reuse_rate": round(self.cached / ok, 3) if ok else None,
            "step_cache_hit_rate": round(self.counted_hits / self.counted, 3) if self.counted else None,
            "size_bytes_last": self.last_size[1] if self.last_size else None,
        }
        if self.sizes is not None:
            self.sizes.sort(key=lambda entry: entry[0])
            out["size_over_time"] = [{"timestamp": stamp, "size_bytes": size} for _, stamp, size in self.sizes]
        out["slowest_steps"] = self.steps.slowest()
        out["failures"] = {key: int(seen[0]) for key, seen in failures}
        out["first"] = self.first[1] if self.first else None
        out["last"] = self.last[1] if self.last else None
        return out


class Report:
    """Per (repository, builder) groups and the total, fed one record at a time."""

    def __init__(self, *, sizes: bool = False) -> None:
        self.sizes = sizes
        self.total = Group(sample=TOTAL_SAMPLE, step_names=TOTAL_STEP_NAMES, sizes=sizes)
        self.groups: dict[tuple[str, str], Group] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        key = (str(record["repository"]), str(record.get("builder") or "-"))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(sizes=self.sizes)
        group.add(record)
        self.total.add(record)

    def result(self, path: str, skipped: int) -> dict[str, Any]:
        rows = [
            {"repository": repository, "builder": builder, **group.summary()}
            for (repository, builder), group in sorted(self.groups.items())
        ]
        return {
            "file": path,
            "records": self.total.builds,
            "skipped_lines": skipped,
            "total": self.total.summary(),
            "groups": rows,
        }


__all__ = [
    "SAMPLE",
    "STEP_NAMES",
    "TOTAL_SAMPLE",
    "TOTAL_STEP_NAMES",
    "Group",
    "Report",
    "Sample",
    "Steps",
    "percentile",
    "step_key",
]
