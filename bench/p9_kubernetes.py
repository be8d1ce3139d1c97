"""P9: the Kubernetes builder through the repository's fake cluster (tests/kubernetes):
8 small builds with ``build-many --jobs 4`` against the same 8 serially, and the per-build
overhead of the Job machinery (Job creation to the step's first log line; its last log line
to rtbuild's result).

Every build is real: a Job whose pod runs the buildah step image in the local dockerd and
pushes to Debian's docker-registry on 127.0.0.1. Each run gets fresh inputs (a nonce file),
so the no-op skip never applies. The fake API server answers in microseconds; on a real
cluster scheduling and image pulls add to the overhead rows.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import DOCKER, REPO, RTBUILD, WORK, BenchError, Row, alternate, bench_env, log, median, run

COUNT = 8
STEP_DIR = REPO / "builders" / "kubernetes" / "step-image"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _registry(root: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return f"127.0.0.1:{port}", proc
        time.sleep(0.05)
    proc.kill()
    raise BenchError("P9: docker-registry did not start")


def _contexts(base: str) -> list[Path]:
    rng = random.Random(9)
    out = []
    for index in range(COUNT):
        ctx = WORK / "p9" / f"ctx{index}"
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY . /app\nRUN sha256sum /app/* > /sums\n")
        (ctx / "data.bin").write_bytes(rng.randbytes(200_000))
        out.append(ctx)
    return out


def _refresh(ctxs: list[Path]) -> None:
    for ctx in ctxs:
        (ctx / "nonce").write_text(uuid.uuid4().hex)


def run_scenario(reps: int, quick: bool) -> list[Row]:
    sys.path.insert(0, str(REPO / "tests" / "kubernetes"))
    from fake_cluster import FakeCluster
    from rtbuild_kubernetes._version import STEP_IMAGE_TAG

    step_image = f"rtbuild/buildah-step:{STEP_IMAGE_TAG}"
    env = bench_env()
    run([RTBUILD, "build", str(STEP_DIR), "--builder", "docker", "-t", step_image, "-q"], env)
    registry, registry_proc = _registry(WORK / "p9" / "registry")
    cluster = FakeCluster(workdir=WORK / "p9" / "cluster").start()
    try:
        base = f"{registry}/bench/busybox:latest"
        run([DOCKER, "tag", "busybox:latest", base], env)
        run([DOCKER, "push", base], env)
        run([DOCKER, "rmi", base], env)
        config = WORK / "p9" / "rtbuild.toml"
        config.write_text(
            f'[builders.kubernetes]\nkubeconfig = "{cluster.kubeconfig_path}"\nstep_image = "{step_image}"\n'
        )
        k8s_env = bench_env(RTBUILD_BUILDER="kubernetes", RTBUILD_CONFIG=str(config))
        ctxs = _contexts(base)
        lines = ['[defaults]\nbuilder = "kubernetes"\n']
        for index, ctx in enumerate(ctxs):
            lines.append(f'[[build]]\npath = "{ctx}"\ntags = ["{registry}/bench/p9-{index}:latest"]\n')
        many = WORK / "p9" / "images.toml"
        many.write_text("\n".join(lines))
        arms = {
            "build-many --jobs 4": lambda: run([RTBUILD, "build-many", str(many), "--jobs", "4", "-q"], k8s_env),
            "serial (--jobs 1)": lambda: run([RTBUILD, "build-many", str(many), "--jobs", "1", "-q"], k8s_env),
        }
        reps = 1 if quick else max(1, min(reps, 2))
        log(f"P9: {reps} alternating round(s) of {COUNT} Kubernetes Jobs, 4 at a time vs serially")
        samples = alternate(arms, reps, warmup=False, before=lambda arm: _refresh(ctxs))
        medians = {k: median(v) for k, v in samples.items()}
        speedup = medians["serial (--jobs 1)"] / medians["build-many --jobs 4"]
        log(f"P9: medians {', '.join(f'{k}: {v:.1f}s' for k, v in medians.items())}; speedup {speedup:.2f}x")

        first, tail = [], []
        for _ in range(1 if quick else 3):
            _refresh(ctxs[:1])
            proc = run([RTBUILD, "build", str(ctxs[0]), "-t", f"{registry}/bench/p9-0:latest", "--json", "-q"], k8s_env)
            timings = json.loads(proc.stdout)["details"]["timings"]
            first.append(timings["first_log_s"])
            tail.append(timings["last_log_to_result_s"])
        log(f"P9: Job creation -> first log line {first}; last log line -> result {tail}")
    finally:
        cluster.stop()
        registry_proc.terminate()
    note = f"{COUNT} Jobs (buildah step, COPY 200 KB + RUN sha256sum, push to a loopback registry); 2 cores"
    return [
        Row(
            "P9a",
            "P9 Kubernetes builder (fake cluster)",
            "serial (--jobs 1) / build-many --jobs 4",
            speedup,
            "x",
            ">= 1.5x faster",
            speedup >= 1.5,
            medians_s=medians,
            samples_s=samples,
            reps=reps,
            note=note,
        ),
        Row(
            "P9b",
            "P9 Kubernetes builder (fake cluster)",
            "Job creation to the step's first log line",
            median(first) * 1000,
            "ms",
            "(info)",
            True,
            reps=len(first),
            note="Secret + Job create, pod start, context upload over pods/exec, step start",
        ),
        Row(
            "P9c",
            "P9 Kubernetes builder (fake cluster)",
            "last log line to rtbuild's result",
            median(tail) * 1000,
            "ms",
            "(info)",
            True,
            reps=len(tail),
            note="pod watch sees the terminated state, termination message read, Secret deleted",
        ),
    ]


def cleanup() -> None:
    """Nothing is tagged locally: the images live in the scenario's own registry."""
