"""``rtbuild metrics`` reads line by line into aggregates (a 76 MB file took up to 944 MB
when every record was held, and ``--json`` printed 47 MB: one ``size_over_time`` entry per
build, twice). The streamed figures must equal the exact computation over all records
(the one the report made before, kept here as the reference) on a file small enough for
every sample to hold every value, and the memory each group keeps must stay bounded."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from rtbuild._observe.profile import counted_steps
from rtbuild._observe.report import load_records
from rtbuild.cli._main import cli

T0 = datetime(2026, 11, 1, tzinfo=UTC)


# -- the reference: the exact computation over every record, in time order ------------------
def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


def _slowest(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        for step in record.get("steps") or ():
            if not step.get("internal"):
                groups.setdefault(str(step.get("name")), []).append(step)
    rows = []
    for name, steps in groups.items():
        durations = [float(s.get("duration_s") or 0.0) for s in steps]
        rows.append(
            {
                "name": name,
                "runs": len(steps),
                "cached": sum(1 for s in steps if s.get("cached")),
                "total_s": round(sum(durations), 3),
                "mean_s": round(sum(durations) / len(durations), 3),
                "max_s": round(max(durations), 3),
            }
        )
    rows.sort(key=lambda row: (-float(row["total_s"]), str(row["name"])))
    return rows[:5]


def _exact(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ok = [r for r in records if r.get("success")]
    durations = [float(r["duration_s"]) for r in ok if isinstance(r.get("duration_s"), int | float)]
    built = [float(r["duration_s"]) for r in ok if not r.get("cached") and isinstance(r.get("duration_s"), int | float)]
    steps = [s for r in ok for s in counted_steps(r.get("steps") or [])]
    sizes = [r for r in ok if isinstance(r.get("size_bytes"), int)]
    failures: dict[str, int] = {}
    for record in records:
        if not record.get("success"):
            key = f"{record.get('error_class') or 'error'} at {record.get('failed_step') or '?'}"
            failures[key] = failures.get(key, 0) + 1
    return {
        "builds": len(records),
        "succeeded": len(ok),
        "failed": len(records) - len(ok),
        "success_rate": round(len(ok) / len(records), 3) if records else None,
        "duration_p50_s": _percentile(durations, 0.5),
        "duration_p95_s": _percentile(durations, 0.95),
        "built_p50_s": _percentile(built, 0.5),
        "built_p95_s": _percentile(built, 0.95),
        "reuse_rate": round(sum(1 for r in ok if r.get("cached")) / len(ok), 3) if ok else None,
        "step_cache_hit_rate": round(sum(1 for s in steps if s.get("cached")) / len(steps), 3) if steps else None,
        "size_bytes_last": sizes[-1]["size_bytes"] if sizes else None,
        "size_over_time": [{"timestamp": r["timestamp"], "size_bytes": r["size_bytes"]} for r in sizes],
        "slowest_steps": _slowest(ok),
        "failures": dict(sorted(failures.items(), key=lambda item: -item[1])),
        "first": records[0]["timestamp"] if records else None,
        "last": records[-1]["timestamp"] if records else None,
    }


def _write(path: Path, count: int, seed: int) -> None:
    """Lines as the plugin writes them, out of time order (clocks, two generations), with
    ties, failures, reuses, sizes and step profiles."""
    rng = random.Random(seed)
    lines = []
    for n in range(count):
        repo = rng.choice(["reg/app", "reg/tool", "docker.io/library/web", "web"])
        stamp = (T0 + timedelta(minutes=rng.randrange(count // 2))).isoformat().replace("+00:00", "Z")
        ok = rng.random() > 0.15
        record: dict[str, Any] = {
            "builder": rng.choice(["docker", "podman"]),
            "cached": ok and rng.random() < 0.3,
            "duration_s": round(rng.uniform(0, 100), 3),
            "image": f"{repo}:{n}",
            "repository": repo,
            "size_bytes": rng.choice([None, rng.randrange(10**8)]) if ok else None,
            "success": ok,
            "tags": [f"{repo}:{n}"],
            "timestamp": stamp,
        }
        if not ok:
            record["error_class"] = rng.choice(["BuildFailedError", "RegistryError", None])
            record["failed_step"] = rng.choice(["RUN make", "push", None])
        elif rng.random() < 0.7:
            record["steps"] = [
                {"name": f"[{i}/4] {text}", "duration_s": round(rng.uniform(0, 30), 3), "cached": rng.random() < 0.4}
                for i, text in enumerate(["FROM base", "RUN make", f"RUN echo {rng.randrange(8)}", "COPY . /"], 1)
            ] + [{"name": "[internal] load build context", "duration_s": 1.0, "internal": True}]
        lines.append(json.dumps(record, sort_keys=True))
    half = count // 3
    path.with_name(path.name + ".1").write_text("\n".join(lines[:half]) + "\n")
    path.write_text("\n".join(lines[half:]) + "\nnot json\n")


def test_the_streamed_report_equals_the_exact_computation(tmp_path: Path) -> None:
    from rtbuild._observe.report import stream_report

    path = tmp_path / "metrics.jsonl"
    _write(path, 600, seed=3)
    loaded = load_records(path)
    for sizes in (True, False):
        streamed = stream_report(path, sizes=sizes)
        assert streamed["records"] == len(loaded.records) == 600 and streamed["skipped_lines"] == 1
        total = _exact(loaded.records)
        if not sizes:
            total.pop("size_over_time")
        assert streamed["total"] == total
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in loaded.records:
            groups.setdefault((record["repository"], record["builder"]), []).append(record)
        assert [(g["repository"], g["builder"]) for g in streamed["groups"]] == sorted(groups)
        for group in streamed["groups"]:
            exact = _exact(groups[(group["repository"], group["builder"])])
            if not sizes:
                exact.pop("size_over_time")
            assert {k: v for k, v in group.items() if k not in ("repository", "builder")} == exact


def test_json_prints_the_figures_and_sizes_over_time_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    _write(path, 200, seed=5)
    runner = CliRunner()
    plain = runner.invoke(cli, ["metrics", "--file", str(path), "--json"])
    assert plain.exit_code == 0, plain.output
    report = json.loads(plain.stdout)
    assert "size_over_time" not in report["total"] and all("size_over_time" not in g for g in report["groups"])
    full = runner.invoke(cli, ["metrics", "--file", str(path), "--json", "--size-over-time"])
    assert full.exit_code == 0, full.output
    sizes = json.loads(full.stdout)["total"]["size_over_time"]
    exact = _exact(load_records(path).records)["size_over_time"]
    assert sizes == exact and len(sizes) > 50


def test_what_a_group_keeps_is_bounded() -> None:
    from rtbuild._observe.aggregate import Sample, Steps

    sample = Sample(100)
    for value in range(10_000):
        sample.add(float(value))
    assert sample.count == 10_000 and len(sample.values) == 100
    assert 2_000 < (sample.percentile(0.5) or 0) < 8_000  # a uniform sample, not the first 100
    steps = Steps(16)
    for n in range(1_000):
        steps.add(f"RUN step {n}", float(n % 50), cached=False)
    steps.add("RUN the slow one", 1e6, cached=True)
    assert len(steps.rows) <= 16
    assert steps.slowest(1)[0]["name"] == "RUN the slow one"
