"""``rtbuild metrics``: a report over the lines the metrics plugin records.

The file is found the way rtbuild-metrics finds it (``RTBUILD_METRICS_FILE``, then
``[plugins.metrics] path``, then ``$XDG_STATE_HOME/rtbuild/metrics.jsonl``), so the report
needs the plugin only to have written the lines, not to be importable.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rtbuild._framework.paths import state_dir
from rtbuild._observe.aggregate import percentile

ENV_FILE = "RTBUILD_METRICS_FILE"
#: A line longer than this is skipped unread (a 400 MB line took 840 MB of memory).
MAX_LINE_CHARS = 16 << 20


def metrics_file(
    plugin_table: Mapping[str, Any], env: Mapping[str, str] | None = None, source: str | None = None
) -> Path:
    """Where the plugin writes: a relative ``path`` of the configuration file ``source`` is
    relative to that file's directory (the variable's, to the current directory)."""
    env = os.environ if env is None else env
    if env.get(ENV_FILE):
        return Path(os.path.expanduser(env[ENV_FILE]))
    raw = plugin_table.get("path")
    if raw:
        path = Path(os.path.expanduser(str(raw)))
        return Path(os.path.abspath(source)).parent / path if source and not path.is_absolute() else path
    return state_dir("metrics.jsonl", env=env)


def parse_time(text: str) -> float:
    """ISO 8601 (``2026-11-30``, ``2026-11-30T12:00``, ``...Z``) -> epoch seconds; naive = UTC.

    A time that is no UTC date of years 1 to 9999 (``0001-01-01T00:00+01:00``) is a
    ValueError: the report's plots place every record on a UTC time axis."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        stamp = value.timestamp()
        datetime.fromtimestamp(stamp, tz=UTC)  # where a plot puts it (9999-12-31T23:59:59.9999999Z rounds up)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"{text!r} is out of the range of UTC dates") from exc
    return stamp


@dataclass
class Records:
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # lines that were not a JSON object with a timestamp


def load_records(
    path: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    repos: Sequence[str] = (),
    builders: Sequence[str] = (),
) -> Records:
    """The lines of ``path`` and of its previous generation (``path.1``, which the metrics
    plugin rotates it to) within the window and filters, each with ``_t`` (epoch), in time
    order. Holds every record: the report itself streams (:func:`stream_report`)."""
    out = Records()
    out.records.extend(iter_records(path, out, since=since, until=until, repos=repos, builders=builders))
    out.records.sort(key=lambda r: r["_t"])
    return out


def iter_records(
    path: Path,
    counts: Records,
    *,
    since: float | None = None,
    until: float | None = None,
    repos: Sequence[str] = (),
    builders: Sequence[str] = (),
) -> Iterator[dict[str, Any]]:
    """:func:`load_records`'s records one at a time, in file order (``path.1`` first), each
    with ``_t`` and ``_seq`` (its place: of two records of one time, the later line is the
    later build); unreadable lines are counted in ``counts.skipped``."""
    wanted = {_familiar(repo) for repo in repos}  # docker.io/library/app is app
    seq = 0
    for line in _lines([path.with_name(path.name + ".1"), path]):
        if "\x00" in line:
            # A crash (power loss) can leave the file's tail as zeros, and the next append
            # then shares their "line": the record after the last zero is whole.
            head, _, line = line.rpartition("\x00")
            if head.strip("\x00").strip():
                counts.skipped += 1  # a torn line before the zeros
        if not line.strip():
            continue
        record, stamp = _read(line)
        if record is None and (cut := line.rfind(_RECORD_START)) > 0:
            # A write a crash or a full disk cut short, then the next build's line appended to
            # it: that record is whole (it was lost with the torn one).
            counts.skipped += 1
            record, stamp = _read(line[cut:])
        if record is None:
            counts.skipped += 1
            continue
        if not isinstance(record, dict) or not _usable(record):
            counts.skipped += 1  # another writer's line, or a hand-edited one: not a crash
            continue
        record["_t"] = stamp
        seq += 1
        record["_seq"] = seq
        # One repository, one group, however its tags were spelled (docker.io/library/app is app).
        record["repository"] = _familiar(str(record.get("repository") or _repository(str(record.get("image") or ""))))
        record.setdefault("success", True)  # lines from before failures were recorded
        if (since is not None and stamp < since) or (until is not None and stamp >= until):
            continue
        if repos and record["repository"] not in wanted:
            continue
        if builders and record.get("builder") not in builders:
            continue
        yield record


def stream_report(
    path: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    repos: Sequence[str] = (),
    builders: Sequence[str] = (),
    sizes: bool = False,
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """:func:`build_report` read line by line, holding only the aggregates
    (:mod:`rtbuild._observe.aggregate`): a 76 MB file no longer takes its records' memory.
    ``sizes`` adds each group's ``size_over_time`` (one entry per build); ``on_record``
    sees every record as it is read (the HTML page keeps what its plots draw)."""
    from rtbuild._observe.aggregate import Report

    counts, report = Records(), Report(sizes=sizes)
    for record in iter_records(path, counts, since=since, until=until, repos=repos, builders=builders):
        report.add(record)
        if on_record is not None:
            on_record(record)
    return report.result(str(path), counts.skipped)


#: How every line of the plugin starts (its keys are sorted; ``builder`` is the first).
_RECORD_START = '{"builder":'


def _read(line: str) -> tuple[Any, float]:
    """The line's JSON value and its timestamp, or ``(None, 0.0)``."""
    try:
        record = json.loads(line)
        return record, parse_time(str(record["timestamp"]))
    except (ValueError, KeyError, TypeError):
        return None, 0.0


def _lines(paths: Iterable[Path]) -> Iterator[str]:
    """The lines of each file in turn, read as they are reported (two 64 MiB generations
    are not held in memory at once). A device or FIFO (``--file /dev/zero``) is refused:
    it may never end."""
    from stat import S_ISDIR, S_ISREG

    from rtbuild.errors import ConfigError

    hint = "point --file, RTBUILD_METRICS_FILE or [plugins.metrics] path at the JSON-lines file"
    for one in paths:
        try:
            mode = os.stat(one).st_mode
            if not (S_ISREG(mode) or S_ISDIR(mode)):  # a directory fails to open, below
                raise ConfigError(f"the metrics file {one} is not a regular file", step="read metrics", hint=hint)
            with one.open(encoding="utf-8", errors="replace", newline=None) as handle:
                while line := handle.readline(MAX_LINE_CHARS):
                    if len(line) == MAX_LINE_CHARS and not line.endswith("\n"):
                        # No record is this long (a big build's steps: about 1 MB): a file
                        # that is no metrics file, or garbage. Not held in memory; skipped.
                        while (rest := handle.readline(MAX_LINE_CHARS)) and not rest.endswith("\n"):
                            pass
                        line = "\x01 an over-long line\n"  # unreadable: counted as skipped
                    yield line
        except FileNotFoundError:
            continue
        except OSError as exc:  # a directory, no permission: the user's path to fix
            raise ConfigError(
                f"cannot read the metrics file {one}: {exc.strerror}", step="read metrics", hint=hint
            ) from None


def _finite(value: object) -> bool:
    """A number a duration can be: not a boolean, not NaN or infinite (JSON allows both),
    not negative (a hand edit's -5 moved p50)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _usable(record: Mapping[str, Any]) -> bool:
    """Whether every field the report reads has the type the metrics plugin writes."""
    texts = ("image", "repository", "builder", "stage", "error_class", "failed_step")
    if any(record.get(key) is not None and not isinstance(record.get(key), str) for key in texts):
        return False
    if any(record.get(key) is not None and not isinstance(record.get(key), bool) for key in ("success", "cached")):
        return False
    if "success" in record and record["success"] is None:
        return False  # absent: a line from before failures were recorded; null: no version's
    if record.get("duration_s") is not None and not _finite(record["duration_s"]):
        return False
    size = record.get("size_bytes")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        return False
    steps = record.get("steps")
    if steps is None:
        return True
    return isinstance(steps, list) and all(
        isinstance(step, dict)
        and isinstance(step.get("name", ""), str)
        and (step.get("duration_s") is None or _finite(step["duration_s"]))
        and all(step.get(key) is None or isinstance(step.get(key), bool) for key in ("cached", "internal"))
        for step in steps
    )


@functools.lru_cache(maxsize=4096)
def _familiar(repo: str) -> str:
    """``docker.io/library/app`` -> ``app``: one repository, however a tag spelled it."""
    from rtbuild.errors import InvalidReferenceError
    from rtbuild.oci import parse_reference

    try:
        return _repository(parse_reference(repo).familiar)
    except InvalidReferenceError:
        return repo


def _repository(image: str) -> str:
    name = image.split("@", 1)[0]
    return name[: name.rfind(":")] if name.rfind(":") > name.rfind("/") else name


def slowest_steps(records: Iterable[Mapping[str, Any]], count: int = 5) -> list[dict[str, Any]]:
    """Steps grouped by their unexpanded text (else their name) over the successful
    records: runs, cached runs, total, mean and max duration."""
    from rtbuild._observe.aggregate import Group

    group = Group()
    for record in records:
        group.add({**record, "success": True, "_t": record.get("_t", 0.0), "timestamp": ""})
    return group.steps.slowest(count)


def summarise_group(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One group's figures (with ``size_over_time``) over records in time order."""
    from rtbuild._observe.aggregate import SAMPLE, Group

    group = Group(sample=max(SAMPLE, len(records)), sizes=True)  # held already: exact
    for index, record in enumerate(records):
        group.add({**record, "_seq": index})
    return group.summary()


def build_report(loaded: Records, path: Path, *, sizes: bool = True) -> dict[str, Any]:
    """Per (repository, builder) summaries plus the totals, ready for JSON, over records
    already loaded (with ``size_over_time`` unless ``sizes`` is false)."""
    from rtbuild._observe.aggregate import Report

    report = Report(sizes=sizes)
    for record in loaded.records:
        report.add(record)
    return report.result(str(path), loaded.skipped)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def group_cells(group: Mapping[str, Any]) -> tuple[str, ...]:
    """One group's row of the summary table, as the text and the HTML report show it."""
    from rtbuild._observe.units import human_duration, human_size

    return (
        group["repository"],
        group["builder"],
        str(group["builds"]),
        percent(group["success_rate"]),
        human_duration(group["duration_p50_s"]),
        human_duration(group["duration_p95_s"]),
        percent(group["reuse_rate"]),
        percent(group["step_cache_hit_rate"]),
        human_size(group["size_bytes_last"]),
    )


def render_text(report: Mapping[str, Any]) -> str:
    from rtbuild._observe.units import human_duration

    if not report["records"]:
        return f"no recorded builds in {report['file']} (for this window and filters)"
    header = ("REPOSITORY", "BUILDER", "BUILDS", "OK", "P50", "P95", "REUSED", "STEP HITS", "SIZE")
    rows = [header, *(group_cells(g) for g in report["groups"])]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    total = report["total"]
    lines += ["", f"{total['builds']} builds, {total['failed']} failed ({report['file']})"]
    if total["slowest_steps"]:
        lines += ["", "slowest steps (total time over the window)"]
        for step in total["slowest_steps"]:
            lines.append(
                f"  {human_duration(step['total_s']):>8}  {step['runs']:>4} runs  {step['cached']:>4} cached"
                f"  max {human_duration(step['max_s']):>7}  {step['name']}"
            )
    if total["failures"]:
        lines += ["", "failures"]
        lines += [f"  {count:>4}  {what}" for what, count in total["failures"].items()]
    if report["skipped_lines"]:
        lines += ["", f"({report['skipped_lines']} unreadable lines skipped)"]
    return "\n".join(lines)


__all__ = [
    "ENV_FILE",
    "Records",
    "build_report",
    "iter_records",
    "load_records",
    "metrics_file",
    "parse_time",
    "percentile",
    "render_text",
    "slowest_steps",
    "stream_report",
    "summarise_group",
]
