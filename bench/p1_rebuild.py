"""P1: rebuild of an unchanged 470 MB / 20,000-file context.

Arms: ``rtbuild build`` (CLI, its no-op skip), ``DOCKER_BUILDKIT=1 docker build``, docker-py
``images.build`` (the legacy builder: it tars and uploads the whole context every time),
a bare Python stat walk (the floor), ``rtbuild.run_build`` called in this process, and
P1r: the no-op of a long-lived ``rtbuild.BuildSession`` (resident: answered from its
inotify watch, no walk).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import noop_profile
from common import (
    DOCKER,
    IMAGE_REPO,
    RTBUILD,
    BenchError,
    Row,
    alternate,
    bench_env,
    docker_rmi,
    ensure_context,
    log,
    median,
    ratio_row,
    run,
    stat_walk,
    timed,
)

CONTEXT_470 = {
    "name": "ctx-470mb-20k",
    "total_bytes": 470_000_000,
    "files": 20_000,
    "seed": 470,
    "dockerfile": "FROM busybox:latest\nCOPY . /ctx\n",
}
TAGS = {arm: f"{IMAGE_REPO}/p1:{arm}" for arm in ("rtbuild", "buildkit", "dockerpy")}


def context_470() -> Path:
    return ensure_context(**CONTEXT_470)  # type: ignore[arg-type]


def _rtbuild_json(ctx: Path, tag: str) -> dict[str, Any]:
    proc = run([RTBUILD, "build", str(ctx), "-t", tag, "-q", "--json"], bench_env())
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


#: Session no-ops per sample batch: each is a few milliseconds, so many are cheap.
RESIDENT_CALLS = 200


def resident_noop(ctx: Path, tag: str, calls: int = RESIDENT_CALLS) -> list[float]:
    """Wall seconds of ``calls`` no-ops of one BuildSession (after one untimed walk);
    fails unless every timed call answered from the watch (no walk, no engine build)."""
    import rtbuild

    with rtbuild.BuildSession() as session:
        first = session.build(rtbuild.BuildRequest(path=str(ctx), tags=[tag]))
        if not first.cached:
            raise BenchError(f"resident no-op: {tag} was rebuilt (result: {first})")
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            result = session.build(rtbuild.BuildRequest(path=str(ctx), tags=[tag]))
            samples.append(time.perf_counter() - started)
            if not result.cached:
                raise BenchError(f"resident no-op: {tag} was rebuilt (result: {result})")
        stats = session.stats()
    if stats["walks"] != 1:
        raise BenchError(f"resident no-op walked the context {stats['walks']} times (expected only the first)")
    return samples


def resident_row(row_id: str, scenario: str, ctx: Path, tag: str, files: int) -> Row:
    samples = resident_noop(ctx, tag)
    value = median(samples) * 1000
    log(f"{row_id}: median {value:.2f} ms over {len(samples)} session no-ops")
    return Row(
        row_id,
        scenario,
        "rtbuild BuildSession no-op (resident)",
        value,
        "ms",
        "<= 5 ms",
        value <= 5.0,
        medians_s={"BuildSession no-op": median(samples)},
        samples_s={"BuildSession no-op": samples},
        reps=len(samples),
        note=f"{files} files; one session, {len(samples)} calls after one walk; every call answered from the watch",
    )


def run_scenario(reps: int, quick: bool) -> list[Row]:
    import docker
    import rtbuild
    from rtbuild._framework.config import load_config
    from rtbuild._framework.plugins import get_plugin_manager

    ctx = context_470()
    env = bench_env()
    os.environ.update({k: env[k] for k in ("XDG_CACHE_HOME", "RTBUILD_BUILDER")})
    client = docker.from_env(timeout=900)
    config = load_config()
    pm = get_plugin_manager(config)

    def api_call() -> None:
        rtbuild.run_build(rtbuild.BuildRequest(path=str(ctx), tags=[TAGS["rtbuild"]]))

    def api_reused() -> None:
        rtbuild.run_build(rtbuild.BuildRequest(path=str(ctx), tags=[TAGS["rtbuild"]]), config=config, pm=pm)

    def dockerpy() -> None:
        client.images.build(path=str(ctx), tag=TAGS["dockerpy"], rm=True)

    log("P1: first builds (untimed) so every arm has its image")
    first = _rtbuild_json(ctx, TAGS["rtbuild"])
    log(f"P1: rtbuild first build: cached={first.get('cached')} in {first.get('duration_s')}s")
    buildkit_env = {**env, "DOCKER_BUILDKIT": "1"}
    run([DOCKER, "build", "-q", "-t", TAGS["buildkit"], str(ctx)], buildkit_env)
    dockerpy()

    # Arms are compared within groups that alternate among themselves: the engine arms,
    # then docker-py (tens of seconds a run) against the rtbuild CLI, then the in-process
    # arms against the stat walk, so a heavy engine run never sits between the two sides
    # of a millisecond comparison.
    cli = timed([RTBUILD, "build", str(ctx), "-t", TAGS["rtbuild"], "-q"], env)
    engine_arms = {
        "rtbuild CLI": cli,
        "BuildKit CLI": timed([DOCKER, "build", "-q", "-t", TAGS["buildkit"], str(ctx)], buildkit_env),
    }
    log(f"P1: {reps} alternating rounds of {', '.join(engine_arms)}")
    samples = alternate(engine_arms, reps)
    py_reps = 3 if quick else 5
    log(f"P1: {py_reps} alternating rounds of docker-py images.build and rtbuild CLI")
    slow = alternate({"rtbuild CLI": cli, "docker-py": dockerpy}, py_reps, warmup=False)
    api_reps = reps if quick else max(20, 4 * reps)  # 0.1 s arms: rounds are cheap
    api_arms = {
        "stat walk": lambda: stat_walk(str(ctx)),
        "rtbuild API": api_call,
        "rtbuild API (pm reused)": api_reused,
    }
    log(f"P1: {api_reps} alternating rounds of {', '.join(api_arms)}")
    in_process = alternate(api_arms, api_reps)

    check = _rtbuild_json(ctx, TAGS["rtbuild"])
    if not check.get("cached"):
        raise BenchError(f"P1: rtbuild rebuilt the unchanged context (result: {check})")
    walked = stat_walk(str(ctx))
    note_files = f"{walked} files; rtbuild result cached={check['cached']}"
    rows = [
        ratio_row(
            "P1a",
            "P1 unchanged rebuild",
            samples,
            "rtbuild CLI",
            "BuildKit CLI",
            at_most=0.35,
            target="<= 0.35x",
            note=note_files,
        ),
        ratio_row(
            "P1b",
            "P1 unchanged rebuild",
            slow,
            "rtbuild CLI",
            "docker-py",
            at_most=1 / 40,
            target="<= 0.025x (1/40)",
            note="docker-py images.build = legacy builder, whole context tarred and uploaded",
        ),
        ratio_row(
            "P1c",
            "P1 unchanged rebuild",
            in_process,
            "rtbuild API",
            "stat walk",
            at_most=1.2,
            target="<= 1.2x",
            note="rtbuild.run_build(BuildRequest(...)) per call, config and plugins loaded each call",
        ),
        ratio_row(
            "P1d",
            "P1 unchanged rebuild",
            in_process,
            "rtbuild API (pm reused)",
            "stat walk",
            target="(info)",
            note="run_build with config= and pm= created once",
        ),
        ratio_row(
            "P1e",
            "P1 unchanged rebuild",
            {"rtbuild CLI": samples["rtbuild CLI"], "stat walk": in_process["stat walk"]},
            "rtbuild CLI",
            "stat walk",
            target="(info)",
            note="medians from two alternation groups; the CLI pays interpreter start-up and plugin loading",
        ),
    ]
    rows.append(resident_row("P1r", "P1 unchanged rebuild", ctx, TAGS["rtbuild"], walked))
    log("P1: where the CLI no-op's time goes (fresh processes, phase by phase)")
    rows += noop_profile.rows(ctx, TAGS["rtbuild"], 3 if quick else 7)
    for arm, values in {**samples, **in_process}.items():
        log(f"P1: median {arm}: {median(values) * 1000:.1f} ms")
    log(f"P1: median docker-py: {median(slow['docker-py']):.2f} s")
    return rows


def cleanup() -> None:
    docker_rmi(*TAGS.values())
