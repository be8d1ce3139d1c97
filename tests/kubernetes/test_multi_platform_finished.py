"""A two-platform build whose amd64 Job has already succeeded when the arm64 Job fails: the
failure stops what still runs, and leaves the finished amd64 Job to its TTL like any successful
Job, with its pod's log (under --quiet that log is the only record of the amd64 build). The step
image is a stand-in (amd64 succeeds at once, arm64 fails a few seconds later): no emulation,
no registry."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _kbuilder_support import RTBUILD, build_stand_in_step, clean_env, write_config, write_docker_config
from conftest import BUSYBOX
from fake_cluster import FakeCluster

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(300)]
STEP = "rtbuild-test/finishing-step:1"
DIGEST = "sha256:" + "a" * 64
SCRIPT = f"""#!/bin/sh
case "$RTBUILD_BUILD_ARGS" in
*linux/arm64*) echo "stand-in step: arm64 builds"; sleep 6; echo "stand-in step: arm64 fails"; exit 5 ;;
esac
echo "stand-in step: amd64 built"
printf '%s' {DIGEST} > /dev/termination-log
"""
REGISTRY = "127.0.0.1:9"  # nothing listens: the step does not push; the tags' removal is refused at once


@pytest.fixture(scope="module")
def finishing_step(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_stand_in_step(tmp_path_factory.mktemp("finishing-step"), SCRIPT, STEP, BUSYBOX)


@pytest.fixture(scope="module")
def arm64_cluster(finishing_step: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    with FakeCluster(workdir=tmp_path_factory.mktemp("finished"), extra_archs=("arm64",)) as cluster:
        yield cluster


def test_a_platform_that_failed_after_another_succeeded_keeps_the_successful_job(
    arm64_cluster: FakeCluster, kubectl: str, tmp_path: Path
) -> None:
    cluster = arm64_cluster
    cluster.reset()
    config = write_config(
        tmp_path / "rtbuild.toml",
        Path(cluster.kubeconfig_path),
        step_image=STEP,
        image_pull_policy="Never",
        skip_unchanged=False,
    )
    docker = write_docker_config(tmp_path / "docker", {REGISTRY: ("robot", "pushpass-123")})  # gives Secrets
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    args = [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", f"{REGISTRY}/team/mp:1", "-q"]
    args += ["--platform", "linux/amd64,linux/arm64"]
    env = clean_env(RTBUILD_CONFIG=str(config), DOCKER_CONFIG=str(docker), HOME=str(tmp_path))
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "arm64 fails" in proc.stderr and "exit code 5" in proc.stderr, proc.stderr[-3000:]

    def jobs() -> dict[str, str]:
        found = {}
        for job in cluster.list("jobs", namespace=cluster.namespace):
            conditions = [c["type"] for c in job["status"].get("conditions") or [] if c.get("status") == "True"]
            found[job["metadata"]["name"]] = ",".join(conditions)
        return found

    # The failed arm64 Job and every Secret go; the amd64 Job that had succeeded stays (its TTL).
    cluster.wait_for(lambda: len(jobs()) == 1 and cluster.list("secrets", namespace=cluster.namespace) == [], 60)
    [(name, conditions)] = jobs().items()
    assert name.endswith("-amd64") and "Complete" in conditions, jobs()
    [pod] = cluster.list("pods", namespace=cluster.namespace, label_selector=f"job-name={name}")
    assert pod["status"]["phase"] == "Succeeded"
    kubeconfig = str(cluster.kubeconfig_path)
    logs = subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, "-n", cluster.namespace, "logs", f"job/{name}", "-c", "build"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "stand-in step: amd64 built" in logs.stdout, logs.stderr
