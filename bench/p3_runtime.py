"""P3: runtime image with a change confined to the source layer, against a scratch build
of the same runtime image.

Both arms call :func:`rtbuild.runtime._build.build_runtime_image` in this process with the
same base and plugins (default: debian:bookworm + jupyter + cacerts, as ``make demo``).
Each run adds a fresh file through ``extra_files``, which changes only the source hash:

* source-layer change: the lock tag (dependency layers) exists, so only the source
  layers are built on top of it (tier "lock");
* scratch build: ``force_rebuild=True, no_cache=True``, every layer built by the engine
  without BuildKit's cache (tier "scratch").

A scratch build can take minutes (apt and pip installs), so P3 may be capped at fewer repetitions
than the other scenarios; the row says how many.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from common import DOCKER, IMAGE_REPO, BenchError, Row, alternate, docker_rmi, log, median, run

REPO = f"{IMAGE_REPO}/p3-runtime"
BASE = os.environ.get("RTBUILD_BENCH_P3_BASE", "debian:bookworm")
PLUGINS = [p for p in os.environ.get("RTBUILD_BENCH_P3_PLUGINS", "jupyter,cacerts").split(",") if p]
#: Scratch builds can take minutes: at most this many timed repetitions (override: env).
MAX_REPS = int(os.environ.get("RTBUILD_BENCH_P3_REPS", "5"))
STAMP = "/opt/rtbuild-bench/stamp"


def run_scenario(reps: int, quick: bool) -> list[Row]:
    from rtbuild._framework.config import load_config
    from rtbuild._framework.plugins import get_plugin_manager
    from rtbuild.runtime._build import build_runtime_image

    config = load_config()
    pm = get_plugin_manager(config)
    results: dict[str, list[Any]] = {"source-layer change": [], "scratch build": []}

    def build(**kwargs: Any) -> Any:
        return build_runtime_image(
            config, BASE, PLUGINS, repo=REPO, pm=pm, extra_files={STAMP: uuid.uuid4().hex}, push=False, **kwargs
        )

    def source_change() -> None:
        results["source-layer change"].append(build())

    def scratch() -> None:
        results["scratch build"].append(build(force_rebuild=True, no_cache=True))

    def after(arm: str) -> None:
        # Drop the exact tag each run made (untimed); the lock tag stays for the next
        # source-layer run, which is what that arm measures.
        result = results[arm][-1]
        docker_rmi(result.details["exact_tag"])

    used = min(reps, MAX_REPS)
    log(f"P3: {used} alternating rounds, {BASE} + {', '.join(PLUGINS)} (first: untimed warm-up of both arms)")
    samples = alternate({"source-layer change": source_change, "scratch build": scratch}, used, after=after)
    # The first result of each arm is the untimed warm-up (it creates the lock tag).
    tiers = {arm: sorted({r.details.get("runtime_tier") for r in rs[1:]}) for arm, rs in results.items()}
    if tiers["source-layer change"] != ["lock"] or tiers["scratch build"] != ["scratch"]:
        raise BenchError(f"P3: unexpected reuse tiers {tiers} (expected lock / scratch)")
    medians = {k: median(v) for k, v in samples.items()}
    speedup = medians["scratch build"] / medians["source-layer change"]
    log(f"P3: medians {', '.join(f'{k}: {v:.2f}s' for k, v in medians.items())}; {speedup:.1f}x")
    reduced = f"; {used} repetitions (scratch builds take minutes)" if used < 5 else ""
    return [
        Row(
            "P3",
            "P3 runtime image, source-layer change",
            "scratch build / source-layer change",
            speedup,
            "x",
            ">= 10x faster",
            speedup >= 10,
            medians_s=medians,
            samples_s=samples,
            reps=used,
            note=f"{BASE} + {', '.join(PLUGINS)}, in-process build_runtime_image; tiers {tiers}{reduced}",
        )
    ]


def cleanup() -> None:
    proc = run([DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}", REPO], check=False)
    docker_rmi(*[line for line in proc.stdout.split() if line and not line.endswith(":<none>")])
