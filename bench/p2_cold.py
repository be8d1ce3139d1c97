"""P2: cold build of the 470 MB context, rtbuild against raw BuildKit.

Both arms pass ``--no-cache`` (rtbuild hands it to the engine, which also turns off its
no-op skip) and their image is removed after every run, so each run builds every layer.
"""

from __future__ import annotations

from common import DOCKER, IMAGE_REPO, RTBUILD, Row, alternate, bench_env, docker_rmi, log, median, timed
from p1_rebuild import context_470

TAGS = {"rtbuild": f"{IMAGE_REPO}/p2:rtbuild", "buildkit": f"{IMAGE_REPO}/p2:buildkit"}


def run_scenario(reps: int, quick: bool) -> list[Row]:
    ctx = context_470()
    env = bench_env()
    arms = {
        "rtbuild CLI --no-cache": timed(
            [RTBUILD, "build", str(ctx), "-t", TAGS["rtbuild"], "-q", "--extra=--no-cache"], env
        ),
        "BuildKit CLI --no-cache": timed(
            [DOCKER, "build", "-q", "--no-cache", "-t", TAGS["buildkit"], str(ctx)], {**env, "DOCKER_BUILDKIT": "1"}
        ),
    }

    def untimed_cleanup(arm: str) -> None:
        docker_rmi(TAGS["rtbuild" if arm.startswith("rtbuild") else "buildkit"])

    log(f"P2: {reps} alternating rounds of cold builds")
    samples = alternate(arms, reps, after=untimed_cleanup)
    medians = {k: median(v) for k, v in samples.items()}
    overhead = (medians["rtbuild CLI --no-cache"] / medians["BuildKit CLI --no-cache"] - 1) * 100
    log(f"P2: medians {', '.join(f'{k}: {v:.2f}s' for k, v in medians.items())}")
    return [
        Row(
            "P2",
            "P2 cold build",
            "rtbuild CLI --no-cache vs BuildKit CLI --no-cache",
            overhead,
            "%",
            "overhead <= 5%",
            overhead <= 5.0,
            medians_s=medians,
            samples_s=samples,
            reps=reps,
            note="BuildKit's incremental context transfer applies to both arms alike",
        )
    ]


def cleanup() -> None:
    docker_rmi(*TAGS.values())
