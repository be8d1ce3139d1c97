"""A kill -9 of rtbuild while its build pod runs leaves no credentials behind: the per-build
Secret is owned by the Job, so when the Job goes (its deadline, then its TTL) the cluster's
garbage collector deletes the Secret too. rtbuild itself runs no clean-up here: it is dead.

The step image is a stand-in whose build only waits, so the test needs no registry."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from _kbuilder_support import RTBUILD, build_stand_in_step, clean_env, write_config, write_docker_config
from conftest import BUSYBOX
from fake_cluster import FakeCluster

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(300)]
STEP = "rtbuild-test/sleeping-step:1"
SCRIPT = '#!/bin/sh\n[ "$1" = build ] || exit 2\necho "stand-in step: building"\nexec sleep 300\n'
REGISTRY = "127.0.0.1:9"  # never contacted: the no-op check is off and the step does not push


@pytest.fixture(scope="module")
def sleeping_step(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_stand_in_step(tmp_path_factory.mktemp("sleeping-step"), SCRIPT, STEP, BUSYBOX)


def _build_running(cluster: FakeCluster) -> bool:
    for pod in cluster.list("pods", namespace=cluster.namespace):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == "build" and "running" in (status.get("state") or {}):
                return True
    return False


def test_kill_9_during_the_build_leaves_no_secret(cluster: FakeCluster, sleeping_step: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "rtbuild.toml",
        Path(cluster.kubeconfig_path),
        step_image=sleeping_step,
        image_pull_policy="Never",
        skip_unchanged=False,
        active_deadline_seconds=8,  # the Job ends by its deadline: nobody is left to delete it
        ttl_seconds_after_finished=1,
    )
    docker = write_docker_config(tmp_path / "docker", {REGISTRY: ("robot", "pushpass-123")})  # gives a Secret
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    args = [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", f"{REGISTRY}/team/killed:1"]
    args += ["--build-arg", "API_TOKEN=tok-123"]  # a secret-looking build arg travels in the Secret too
    env = clean_env(RTBUILD_CONFIG=str(config), DOCKER_CONFIG=str(docker), HOME=str(tmp_path))
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cluster.wait_for(lambda: _build_running(cluster), timeout=120)
        (secret,) = cluster.list("secrets", namespace=cluster.namespace)
        (job,) = cluster.list("jobs", namespace=cluster.namespace)
        assert set(secret["data"]) == {".dockerconfigjson", "build-arg.API_TOKEN"}
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    requests = len(cluster.requests)
    # The deadline fails the Job, its TTL deletes it, the garbage collector takes the Secret.
    cluster.wait_for(lambda: cluster.get("jobs", job["metadata"]["name"]) is None, timeout=60)
    cluster.wait_for(lambda: cluster.list("secrets", namespace=cluster.namespace) == [], timeout=30)
    cluster.wait_for(lambda: cluster.list("pods", namespace=cluster.namespace) == [], timeout=30)
    assert len(cluster.requests) == requests  # the cluster did it alone: rtbuild was dead
