"""P10: cost curves. How the no-op and the first build grow with the context.

Two series of generated contexts (created once under RTBUILD_BENCH_DIR and reused):
by file count (1k, 10k, 50k, 100k files of ~5 KB on average) and by size (4,000 files of
0.1, 0.5 and 2 GB; the 2 GB one is P6's context). On each: the no-op of an unchanged
context through the rtbuild CLI, the in-process API (``rtbuild.run_build``) and a
``BuildSession`` (resident), next to BuildKit's cached rebuild (``docker build`` of the
same context, already built) and a bare stat walk; and a first build of new inputs
(rtbuild with an empty stat cache and no tag yet, against BuildKit, both with a fresh
``--build-arg NONCE`` as in P2b). The medians go into the results file (``data``) and
:mod:`curves` draws them into docs/img/cost-*.png with a line fitted through each arm.
Few repetitions for the big contexts keep the scenario to about a quarter of an hour.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

from common import (
    DOCKER,
    IMAGE_REPO,
    RTBUILD,
    WORK,
    BenchError,
    CacheJanitor,
    Row,
    alternate,
    bench_env,
    docker_rmi,
    ensure_context,
    log,
    median,
    run,
    stat_walk,
    timed,
)
from p1_rebuild import resident_noop
from p2_cold import NONCE_DOCKERFILE
from p6_memory import CONTEXT_2G

DOCKERFILE = "FROM busybox:latest\nCOPY . /ctx\n"
#: (series, name, files, bytes, seed); the 2 GB context is P6's (generated once for both).
CONTEXTS: list[tuple[str, str, int, int, int]] = [
    ("files", "ctx-cost-1k", 1_000, 5_000_000, 1),
    ("files", "ctx-cost-10k", 10_000, 50_000_000, 10),
    ("files", "ctx-cost-50k", 50_000, 250_000_000, 50),
    ("files", "ctx-cost-100k", 100_000, 500_000_000, 100),
    ("size", "ctx-cost-100mb", 4_000, 100_000_000, 1000),
    ("size", "ctx-cost-500mb", 4_000, 500_000_000, 5000),
    ("size", "ctx-2gb", 4_000, 2_000_000_000, 2000),
]
assert CONTEXTS[-1][1:] == tuple(CONTEXT_2G[k] for k in ("name", "files", "total_bytes", "seed")), "P6's context"
NOOP_ARMS = ("BuildKit cached rebuild", "rtbuild CLI no-op", "rtbuild API no-op", "BuildSession no-op", "stat walk")
FIRST_ARMS = ("rtbuild first build", "BuildKit first build")
TAGS = {"rtbuild": f"{IMAGE_REPO}/p10:rtbuild", "buildkit": f"{IMAGE_REPO}/p10:buildkit"}
_DATA: dict[str, Any] = {}


def scenario_data() -> dict[str, Any]:
    """The curve points of the last run (stored beside the rows in the results file)."""
    return dict(_DATA)


def _context(name: str, files: int, total: int, seed: int) -> Path:
    return ensure_context(name, total_bytes=total, files=files, seed=seed, dockerfile=DOCKERFILE)


def _noop_samples(ctx: Path, reps: int, quick: bool) -> dict[str, list[float]]:
    import rtbuild

    env = bench_env()
    buildkit_env = {**env, "DOCKER_BUILDKIT": "1"}
    run([RTBUILD, "build", str(ctx), "-t", TAGS["rtbuild"], "-q"], env)
    run([DOCKER, "build", "-q", "-t", TAGS["buildkit"], str(ctx)], buildkit_env)
    engine = alternate(
        {
            "rtbuild CLI no-op": timed([RTBUILD, "build", str(ctx), "-t", TAGS["rtbuild"], "-q"], env),
            "BuildKit cached rebuild": timed([DOCKER, "build", "-q", "-t", TAGS["buildkit"], str(ctx)], buildkit_env),
        },
        reps,
    )

    def api() -> None:
        rtbuild.run_build(rtbuild.BuildRequest(path=str(ctx), tags=[TAGS["rtbuild"]]))

    in_process = alternate({"rtbuild API no-op": api, "stat walk": lambda: stat_walk(str(ctx))}, max(reps, 3))
    resident = resident_noop(ctx, TAGS["rtbuild"], calls=20 if quick else 50)
    return {**engine, **in_process, "BuildSession no-op": resident}


def _first_samples(ctx: Path, reps: int) -> dict[str, list[float]]:
    from rtbuild.context import StatCache

    env = bench_env()
    buildkit_env = {**env, "DOCKER_BUILDKIT": "1"}
    dockerfile = WORK / "p10" / "Dockerfile"
    if not dockerfile.is_file() or dockerfile.read_text() != NONCE_DOCKERFILE:
        dockerfile.parent.mkdir(parents=True, exist_ok=True)
        dockerfile.write_text(NONCE_DOCKERFILE)

    def rtbuild_first() -> None:
        argv = [RTBUILD, "build", str(ctx), "-t", TAGS["rtbuild"], "-q", f"--build-arg=NONCE={uuid.uuid4().hex}"]
        run([*argv, "--extra=--file", f"--extra={dockerfile}"], env)

    def buildkit_first() -> None:
        nonce = f"NONCE={uuid.uuid4().hex}"
        argv = [DOCKER, "build", "-q", "-f", str(dockerfile), "--build-arg", nonce, "-t", TAGS["buildkit"], str(ctx)]
        run(argv, buildkit_env)

    def before(arm: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(StatCache(os.path.abspath(ctx), enabled=False).path)
        docker_rmi(*TAGS.values())

    arms = {"rtbuild first build": rtbuild_first, "BuildKit first build": buildkit_first}
    return alternate(arms, reps, warmup=False, before=before)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y)."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def fitted_growth(points: list[dict[str, Any]], series: str, arm: str) -> float:
    """Seconds added per unit (10k files for the file series, 1 GB for the size series)."""
    unit = 10_000 if series == "files" else 1e9
    key = "files" if series == "files" else "bytes"
    xy = [(p[key] / unit, p["noop_s"][arm]) for p in points if p["series"] == series and arm in p["noop_s"]]
    return _slope(xy)


def run_scenario(reps: int, quick: bool) -> list[Row]:
    noop_reps = 1 if quick else 3
    points: list[dict[str, Any]] = []
    _DATA.clear()
    _DATA["points"] = points
    rows: list[Row] = []
    for series, name, files, total, seed in CONTEXTS:
        started = time.perf_counter()
        ctx = _context(name, files, total, seed)
        janitor = CacheJanitor()
        try:
            noop = _noop_samples(ctx, noop_reps, quick)
            first_reps = 1 if quick else (3 if total <= 250_000_000 else 2)
            first = _first_samples(ctx, first_reps)
        finally:
            docker_rmi(*TAGS.values())
            janitor.sweep()  # each first build leaves a cache record as big as the context
        medians = {arm: median(values) for arm, values in noop.items()}
        first_medians = {arm: median(values) for arm, values in first.items()}
        overhead = (first_medians["rtbuild first build"] / first_medians["BuildKit first build"] - 1) * 100
        points.append(
            {
                "series": series,
                "context": name,
                "files": files,
                "bytes": total,
                "noop_s": {arm: round(value, 5) for arm, value in medians.items()},
                "noop_reps": {arm: len(values) for arm, values in noop.items()},
                "first_s": {arm: round(value, 3) for arm, value in first_medians.items()},
                "first_reps": first_reps,
                "first_overhead_pct": round(overhead, 2),
            }
        )
        shown = ", ".join(f"{arm} {value * 1000:.1f} ms" for arm, value in medians.items())
        log(f"P10 {name}: {shown}; first build {overhead:+.1f}% ({time.perf_counter() - started:.0f}s)")
        if name == "ctx-cost-100k":
            resident = noop["BuildSession no-op"]
            value = median(resident) * 1000
            rows.append(
                Row(
                    "P1r-100k",
                    "P10 cost curves",
                    "rtbuild BuildSession no-op (resident), 100,000 files",
                    value,
                    "ms",
                    "<= 5 ms",
                    value <= 5.0,
                    medians_s={"BuildSession no-op": median(resident)},
                    samples_s={"BuildSession no-op": resident},
                    reps=len(resident),
                    note="as P1r, on the 100k-file context of the cost curves: independent of the context's size",
                )
            )
    if not points:
        raise BenchError("P10: no context measured")
    for series, unit in (("files", "10k files"), ("size", "GB")):
        for index, arm in enumerate(NOOP_ARMS[:4]):
            growth = fitted_growth(points, series, arm) * 1000
            rows.append(
                Row(
                    f"P10{'abcd'[index]}{'' if series == 'files' else '-size'}",
                    "P10 cost curves",
                    f"{arm}: growth per {unit} (fitted)",
                    growth,
                    "ms",
                    "(info)",
                    True,
                    medians_s={p["context"]: p["noop_s"][arm] for p in points if p["series"] == series},
                    reps=noop_reps,
                    note=f"least-squares slope through the {series} series; curves in docs/img/cost-*.png",
                )
            )
    # First builds: rtbuild's extra time over BuildKit's, fitted against size; its
    # intercept is the fixed cost (rtbuild's start-up), its slope the cost of the inputs.
    for series, unit, scale in (("files", "10k files", 10_000), ("size", "GB", 1e9)):
        chosen = [p for p in points if p["series"] == series]
        key = "files" if series == "files" else "bytes"
        extra = [
            (p[key] / scale, p["first_s"]["rtbuild first build"] - p["first_s"]["BuildKit first build"]) for p in chosen
        ]
        largest = max(chosen, key=lambda p: p[key])
        rows.append(
            Row(
                f"P10e{'' if series == 'files' else '-size'}",
                "P10 cost curves",
                f"first build: rtbuild's extra time over BuildKit per {unit} (fitted)",
                _slope(extra) * 1000,
                "ms",
                "(info)",
                True,
                medians_s={
                    p["context"]: p["first_s"]["rtbuild first build"] - p["first_s"]["BuildKit first build"]
                    for p in chosen
                },
                reps=largest["first_reps"],
                note=f"{largest['context']}: {largest['first_overhead_pct']:+.1f}%; every context in data.points",
            )
        )
    return rows


def cleanup() -> None:
    docker_rmi(*TAGS.values())
