"""Run the rtbuild benchmarks (``make bench``): print a table, write bench/results/latest.json.

Usage::

    python bench/run.py [--only P1,P4] [--quick] [--reps N] [--out PATH] [--keep-images] [--keep-engine-cache]

``BENCH=P1,P4`` and ``BENCH_QUICK=1`` in the environment do the same as ``--only`` and
``--quick`` (so ``BENCH=P4 make bench`` works). Scenarios are described in bench/README.md
and docs/performance.md; the JSON format is documented there too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    REPO,
    WORK,
    CacheJanitor,
    Row,
    cleanup_images,
    cpu_times,
    git_commit,
    log,
    machine,
    prune_dangling_images,
    reset_engine_cache,
    steal_pct,
)

SCENARIOS: dict[str, tuple[str, str]] = {
    "P1": ("p1_rebuild", "rebuild of an unchanged 470 MB / 20,000-file context"),
    "P2": ("p2_cold", "cold build of the 470 MB context"),
    "P3": ("p3_runtime", "runtime image, change confined to the source layer"),
    "P4": ("p4_startup", "start-up: rtbuild --version, rtbuild plugins"),
    "P5": ("p5_parallel", "8 small builds with --jobs 4; 8 concurrent requests for one tag"),
    "P6": ("p6_memory", "peak RSS building a 2 GB context"),
    "P7": ("p7_podman", "podman backend: no-op and cold build vs podman's CLI; emulated arm64 vs native"),
    "P8": ("p8_runtime_scale", "runtime image with a 1,000-file payload: exact hits, one-file changes"),
    "P9": ("p9_kubernetes", "kubernetes builder via the fake cluster: 8 Jobs --jobs 4 vs serial; Job overhead"),
    "P10": ("p10_cost", "cost curves: no-op and first build against context size (1k-100k files, 0.1-2 GB)"),
}
SCHEMA = 2
DEFAULT_OUT = REPO / "bench" / "results" / "latest.json"
#: Where a partial run (``--only``) writes: latest.json holds one full run of one commit.
PARTIAL_OUT = REPO / "bench" / "results" / "partial.json"
DOCS = REPO / "docs" / "performance.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=os.environ.get("BENCH", ""), help="Comma-separated scenario ids (P1..P6).")
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="Fewer repetitions (3) and trials: a smoke run, not a result to publish.",
    )
    parser.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "0") or 0), help="Repetitions.")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results file (default: latest.json for a full run, else partial.json)",
    )
    parser.add_argument(
        "--keep-images",
        action="store_true",
        help="Keep the rtbuild-bench/* images and the BuildKit cache records the run made.",
    )
    parser.add_argument(
        "--keep-engine-cache",
        action="store_true",
        default=os.environ.get("BENCH_KEEP_ENGINE_CACHE", "") not in ("", "0"),
        help="Start without pruning the engine's build cache and dangling images (see docs/performance.md).",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="Print the results file as a Markdown table (docs) and exit."
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="Write the results section of docs/performance.md from the results file and exit.",
    )
    args = parser.parse_args(argv)
    wanted = [item.strip().upper() for item in args.only.split(",") if item.strip()] or list(SCENARIOS)
    unknown = [item for item in wanted if item not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.scenarios = wanted
    args.full = wanted == list(SCENARIOS)
    if args.out is None:
        args.out = DEFAULT_OUT if args.full or args.markdown or args.write_docs else PARTIAL_OUT
    args.reps = args.reps or (3 if args.quick else 5)
    if args.reps < 5 and not args.quick:
        parser.error("fewer than 5 repetitions is only allowed with --quick")
    return args


def load_previous(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else {}


def table(rows: list[dict[str, Any]]) -> str:
    headers = ("id", "scenario", "compares", "measured", "target", "ok")
    body = []
    for row in rows:
        body.append(
            (
                row["id"],
                row["scenario"],
                row["compares"],
                row["shown"],
                row["target"],
                "info" if row["target"] == "(info)" else ("ok" if row["ok"] else "MISSED"),
            )
        )
    widths = [max(len(str(r[i])) for r in [headers, *body]) for i in range(len(headers))]

    def fmt(cells: tuple[Any, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(headers), fmt(tuple("-" * w for w in widths)), *(fmt(r) for r in body)])


def _met(row: dict[str, Any]) -> str:
    if row["target"] == "(info)":
        return "info"  # no target: nothing to meet
    return "yes" if row["ok"] else "**no**"


def _steal_lines(document: dict[str, Any]) -> list[str]:
    # Runs before steal was recorded have none: their block stays as it was generated.
    steal = {key: entry.get("steal_pct") for key, entry in document.get("scenarios", {}).items()}
    if all(value is None for value in steal.values()):
        return []
    shown = ", ".join(f"{key} {'?' if value is None else f'{value:g}%'}" for key, value in steal.items())
    return [
        f"Host CPU steal per scenario (time the hypervisor gave this machine's CPUs to other guests): {shown}.",
        "",
    ]


def markdown(document: dict[str, Any]) -> str:
    """The results file as the results section of docs/performance.md (generated, never edited)."""
    machine_info = document.get("machine", {})
    missed = [
        row["id"] for entry in document.get("scenarios", {}).values() for row in entry["rows"] if _met(row) == "**no**"
    ]
    lines = [
        f"Generated by `bench/run.py --write-docs` from `bench/results/latest.json`: one `make bench`"
        f" run of commit `{document.get('commit', '?')}`, {document.get('date', '?')}"
        f" ({document.get('duration_s', '?')} s).",
        "",
        f"Machine: {', '.join(f'{k} {v}' for k, v in machine_info.items())}.",
        "",
        *_steal_lines(document),
        f"Rows missed: {', '.join(missed) if missed else 'none'}.",
        "",
        "| id | scenario | compares | medians | measured | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in document.get("scenarios", {}).values():
        if entry.get("error"):
            lines.append(f"| | {entry['title']} | could not run: {entry['error']} | | | | |")
        for row in entry["rows"]:
            medians = ", ".join(f"{name} {value:.3g} s" for name, value in row["medians_s"].items())
            met = _met(row)
            reps = f" ({row['reps']} run{'s' if row['reps'] != 1 else ''})" if row["reps"] else ""
            lines.append(
                f"| {row['id']} | {row['scenario']} | {row['compares']} | {medians}{reps} "
                f"| {row['shown']} | {row['target']} | {met} |"
            )
    return "\n".join(lines)


def write_docs(document: dict[str, Any], path: Path = DOCS) -> None:
    """Replace the block between the results markers of docs/performance.md, then draw
    the cost curves (docs/img/cost-*.png) and write the text under them."""
    import curves

    text = path.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:start] + "\n" + markdown(document) + "\n" + text[end:])
    for drawn in curves.write_docs(document, path):
        log(f"drew {drawn.relative_to(REPO)}")


def docs_block(path: Path = DOCS) -> str:
    """The generated block as it stands in the docs (for the test that keeps them in step)."""
    text = path.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.markdown:
        print(markdown(load_previous(args.out)))
        return 0
    if args.write_docs:
        write_docs(load_previous(args.out))
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    # In-process arms (the API) share the isolated cache of the CLI arms.
    os.environ.setdefault("XDG_CACHE_HOME", str(WORK / "xdg-cache"))
    os.environ["RTBUILD_BUILDER"] = "docker"
    # A full run starts afresh (one run of one commit); a partial one adds to partial.json.
    results: dict[str, Any] = {} if args.full else dict(load_previous(args.out).get("scenarios", {}))
    failed = False
    started_all = time.perf_counter()
    # Read once: a commit made while the bench runs must not split one run over two commits.
    commit = git_commit()
    log(f"scenarios {', '.join(args.scenarios)}; reps {args.reps}{' (quick)' if args.quick else ''}; work dir {WORK}")
    if not args.keep_engine_cache:
        log(f"engine: {reset_engine_cache()}")
    for scenario_id in args.scenarios:
        module_name, title = SCENARIOS[scenario_id]
        log(f"=== {scenario_id}: {title}")
        started = time.perf_counter()
        host = cpu_times()
        entry: dict[str, Any] = {
            "title": title,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "commit": commit,
            "quick": args.quick,
            "reps": args.reps,
            "error": None,
            "rows": [],
        }
        module = importlib.import_module(module_name)
        janitor = None if args.keep_images else CacheJanitor()
        try:
            rows: list[Row] = module.run_scenario(args.reps, args.quick)
            entry["rows"] = [{**row.to_dict(), "shown": row.shown()} for row in rows]
            if hasattr(module, "scenario_data"):  # e.g. P10's curve points, for the plots
                entry["data"] = module.scenario_data()
        except Exception as exc:
            failed = True
            entry["error"] = f"{type(exc).__name__}: {exc}"
            log(f"{scenario_id} failed: {entry['error']}")
            traceback.print_exc()
        finally:
            if not args.keep_images:
                try:
                    getattr(module, "cleanup", lambda: None)()
                except Exception as exc:  # cleanup must not hide the results
                    log(f"{scenario_id} cleanup failed: {exc}")
            if janitor is not None:
                swept = janitor.sweep()
                log(f"{scenario_id}: removed {swept} BuildKit cache records made here ({janitor.freed / 1e9:.1f} GB)")
        entry["duration_s"] = round(time.perf_counter() - started, 1)
        entry["steal_pct"] = steal_pct(host, cpu_times())
        results[scenario_id] = entry
        log(f"{scenario_id} took {entry['duration_s']}s; host CPU steal {entry['steal_pct']}%")
    if not args.keep_images:
        cleanup_images()
        if not args.keep_engine_cache:
            # Rebuilding a tag leaves its old image untagged: P5 alone leaves about 150.
            log(f"engine: {prune_dangling_images()}")

    document = {
        "schema": SCHEMA,
        "commit": commit if args.full else "partial",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": round(time.perf_counter() - started_all),
        "machine": machine(),
        "scenarios": {key: results[key] for key in SCENARIOS if key in results},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    if args.full and args.out == DEFAULT_OUT:
        write_docs(document)

    this_run = [row for key in args.scenarios for row in results[key]["rows"]]
    errors = {key: results[key]["error"] for key in args.scenarios if results[key]["error"]}
    print()
    print(table(this_run))
    for key, error in errors.items():
        print(f"{key}: ERROR {error}")
    if args.quick:
        print("(quick mode: fewer repetitions; do not publish these numbers)")
    missed = [row["id"] for row in this_run if not row["ok"] and row["target"] != "(info)"]
    print(
        f"\n{len(this_run)} rows, {len(missed)} missed{': ' + ', '.join(missed) if missed else ''}; "
        f"{time.perf_counter() - started_all:.0f}s; results in {args.out}"
    )
    # Missed targets are results, not failures; a scenario that could not run is.
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
