"""A two-platform build (one Job per platform, a fake cluster with an amd64 and an arm64
node) stops within seconds on Ctrl-C, SIGTERM or the failure of one platform, and deletes
every Job, pod and Secret. The step image is a stand-in whose build waits (or fails on
arm64 when asked), so the test needs no emulation and no registry."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import RTBUILD, build_stand_in_step, clean_env, write_config, write_docker_config
from conftest import BUSYBOX
from fake_cluster import FakeCluster

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(300)]
STEP = "rtbuild-test/waiting-step:1"
SCRIPT = """#!/bin/sh
case "$1" in
build)
    case "$RTBUILD_BUILD_ARGS" in
    *FAIL_ARM64=1*linux/arm64*|*linux/arm64*FAIL_ARM64=1*) echo "stand-in step: arm64 fails"; exit 5 ;;
    esac
    echo "stand-in step: building"
    exec sleep 300 ;;
*) exit 2 ;;
esac
"""
REGISTRY = "127.0.0.1:9"  # nothing listens: the no-op check is off, the step does not push, and the
# temporary tags' removal after a failure or interrupt is refused at once (one warning)


@pytest.fixture(scope="module")
def waiting_step(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_stand_in_step(tmp_path_factory.mktemp("waiting-step"), SCRIPT, STEP, BUSYBOX)


@pytest.fixture(scope="module")
def two_arch_cluster(waiting_step: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    with FakeCluster(workdir=tmp_path_factory.mktemp("two-arch"), extra_archs=("arm64",)) as cluster:
        yield cluster


def _start(cluster: FakeCluster, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    cluster.reset()
    config = write_config(
        tmp_path / "rtbuild.toml",
        Path(cluster.kubeconfig_path),
        step_image=STEP,
        image_pull_policy="Never",
        skip_unchanged=False,
    )
    docker = write_docker_config(tmp_path / "docker", {REGISTRY: ("robot", "pushpass-123")})  # gives a Secret
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    args = [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", f"{REGISTRY}/team/mp:1"]
    args += ["--platform", "linux/amd64,linux/arm64", *extra]
    env = clean_env(RTBUILD_CONFIG=str(config), DOCKER_CONFIG=str(docker), HOME=str(tmp_path))
    return subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _running_builds(cluster: FakeCluster) -> int:
    running = 0
    for pod in cluster.list("pods", namespace=cluster.namespace):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            running += status.get("name") == "build" and "running" in (status.get("state") or {})
    return running


def _left(cluster: FakeCluster) -> list[Any]:
    return [cluster.list(kind, namespace=cluster.namespace) for kind in ("jobs", "pods", "secrets")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_stops_both_platforms_jobs_at_once(
    two_arch_cluster: FakeCluster, tmp_path: Path, sig: signal.Signals
) -> None:
    cluster = two_arch_cluster
    proc = _start(cluster, tmp_path)
    try:
        cluster.wait_for(lambda: _running_builds(cluster) == 2, timeout=180)
        assert len(cluster.list("secrets", namespace=cluster.namespace)) == 2
        started = time.monotonic()
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        took = time.monotonic() - started
        print(f"stopped {took:.1f}s after {sig.name}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert took < 20, f"rtbuild took {took:.1f}s to stop"
    cluster.wait_for(lambda: _left(cluster) == [[], [], []], timeout=60)


def test_one_platform_failing_stops_the_other(two_arch_cluster: FakeCluster, tmp_path: Path) -> None:
    cluster = two_arch_cluster
    proc = _start(cluster, tmp_path, "--build-arg", "FAIL_ARM64=1")
    try:
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=120)
        took = time.monotonic() - started
        print(f"failed after {took:.1f}s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stderr[-3000:]
    assert "arm64 fails" in stderr and "exit code 5" in stderr, stderr[-3000:]
    assert took < 90, f"rtbuild took {took:.1f}s"  # the amd64 step alone waits 300 s
    cluster.wait_for(lambda: _left(cluster) == [[], [], []], timeout=60)
