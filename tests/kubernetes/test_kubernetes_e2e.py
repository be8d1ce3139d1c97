"""End to end: ``rtbuild build --builder kubernetes`` through the fake cluster, where the
real buildah step image builds real Dockerfiles and pushes to Debian's docker-registry on
127.0.0.1. Nothing is mocked below the API server's protocol: the Job's pod runs in dockerd.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import (
    DOCKER,
    RTBUILD,
    Site,
    build_step_image,
    push_base,
    rtbuild,
    write_config,
    write_docker_config,
)

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


@pytest.fixture(scope="session")
def step_image(docker_engine: str) -> str:
    return build_step_image(docker_engine)


@pytest.fixture(scope="session")
def k8s_site(auth_registry: Any, step_image: str, tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("k8s-site")
    config = write_docker_config(
        root / "docker", {auth_registry.host: (auth_registry.username, auth_registry.password)}
    )
    base = push_base(auth_registry.host, config)
    return Site(root, auth_registry.host, config, base, password=auth_registry.password)


@pytest.fixture
def site(k8s_site: Site, cluster: Any, tmp_path: Path) -> Iterator[Site]:
    yield Site(tmp_path, k8s_site.registry, k8s_site.docker_config, k8s_site.base, password=k8s_site.password)


def _config(site: Site, cluster: Any, **settings: object) -> Path:
    return write_config(site.root / "rtbuild.toml", Path(cluster.kubeconfig_path), step_image=_tag(), **settings)


def _tag() -> str:
    from _kbuilder_support import step_image_tag

    return step_image_tag()


def _build(site: Site, context: Path, *tags: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    args = ["build", str(context), "--builder", "kubernetes"]
    for tag in tags:
        args += ["-t", tag]
    return rtbuild(*args, *extra, cwd=site.root, env=site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml")))


def _jobs(cluster: Any) -> list[dict[str, Any]]:
    return [j for j in cluster.list("jobs", namespace=cluster.namespace)]


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=300)


def test_build_pushes_every_tag_runs_and_unchanged_rebuild_creates_no_job(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context(
        "app",
        'FROM BASE\nARG GREETING=hello\nRUN echo "$GREETING from k8s" > /greeting.txt\nCOPY data/ /data/\n',
        {"data/a.txt": "file-a\n", "ignored.log": "not sent\n", ".dockerignore": "*.log\n"},
    )
    image = f"{site.registry}/team/app"
    proc = _build(site, context, f"{image}:1", f"{image}:latest")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1].endswith(f"{image}:1")
    assert "from k8s" in proc.stderr or "STEP" in proc.stderr  # the pod's log, followed live
    assert len(cluster.requests_for(verb="create", resource="jobs")) == 1
    # The per-build credentials Secret is gone; the pod never had them in its env.
    assert cluster.list("secrets", namespace=cluster.namespace) == []
    auth = json.loads((site.docker_config / "config.json").read_text())["auths"][site.registry]["auth"]
    for obj in _jobs(cluster) + cluster.list("pods", namespace=cluster.namespace):
        text = json.dumps(obj)
        assert auth not in text and site.password not in text, text[text.find(auth) - 300 : text.find(auth) + 100]
    assert auth not in proc.stderr and site.password not in proc.stderr
    # The image runs in dockerd with the expected content, pulled from the registry.
    pulled = _docker("--config", str(site.docker_config), "pull", f"{image}:latest")
    assert pulled.returncode == 0, pulled.stderr
    ran = _docker("run", "--rm", f"{image}:latest", "sh", "-c", "cat /greeting.txt /data/a.txt; ls /")
    assert ran.returncode == 0, ran.stderr
    assert "hello from k8s" in ran.stdout and "file-a" in ran.stdout and "ignored.log" not in ran.stdout
    _docker("rmi", f"{image}:latest")
    # Unchanged: no Job, no Secret, no pod.
    cluster.clear_requests()
    again = _build(site, context, f"{image}:1", f"{image}:latest")
    assert again.returncode == 0, again.stderr[-4000:]
    assert cluster.requests_for(verb="create") == []
    assert "no input changed" in again.stderr


def test_failing_run_step_reports_exit_code_and_log_tail_and_deletes_the_job(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context("fails", "FROM BASE\nRUN echo before-the-failure && exit 7\n")
    proc = _build(site, context, f"{site.registry}/team/fails:1")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "exit code 7" in proc.stderr or "exit status 7" in proc.stderr, proc.stderr[-3000:]
    assert "before-the-failure" in proc.stderr
    assert "RunStepFailedError" in rtbuild_json_error(site, context)
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


def rtbuild_json_error(site: Site, context: Path) -> str:
    proc = rtbuild(
        "build",
        "--json",
        str(context),
        "--builder",
        "kubernetes",
        "-t",
        f"{site.registry}/team/fails:2",
        cwd=site.root,
        env=site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml")),
    )
    return proc.stdout + proc.stderr


def test_deadline_stops_and_deletes_the_job(site: Site, cluster: Any) -> None:
    _config(site, cluster, active_deadline_seconds=20)
    context = site.context("slow", "FROM BASE\nRUN sleep 300\n")
    proc = _build(site, context, f"{site.registry}/team/slow:1")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "deadline" in proc.stderr.lower()
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


def test_ctrl_c_deletes_the_job_and_its_pod(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context("interrupted", "FROM BASE\nRUN sleep 300\n")
    env = site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml"))
    args = [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/int:1"]
    proc = subprocess.Popen(args, cwd=site.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cluster.wait_for(lambda: _running_build_pod(cluster), timeout=180)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    cluster.wait_for(lambda: _jobs(cluster) == [] and cluster.list("pods", namespace=cluster.namespace) == [], 60)
    assert cluster.list("secrets", namespace=cluster.namespace) == []


def _running_build_pod(cluster: Any) -> bool:
    for pod in cluster.list("pods", namespace=cluster.namespace):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == "build" and "running" in (status.get("state") or {}):
                return True
    return False


def test_forbidden_exec_names_the_rbac_rule(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    cluster.faults.forbid("create", "pods/exec")
    context = site.context("forbidden", "FROM BASE\nRUN true\n")
    proc = _build(site, context, f"{site.registry}/team/forbidden:1")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "pods/exec" in proc.stderr and "RBAC" in proc.stderr
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


def test_registry_transport_builds_without_exec(site: Site, cluster: Any) -> None:
    _config(site, cluster, transport="registry")
    context = site.context("viareg", "FROM BASE\nCOPY msg.txt /msg.txt\n", {"msg.txt": "through the registry\n"})
    image = f"{site.registry}/team/viareg:1"
    proc = _build(site, context, image)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert cluster.requests_for(resource="pods/exec") == []
    pulled = _docker("--config", str(site.docker_config), "pull", image)
    assert pulled.returncode == 0, pulled.stderr
    ran = _docker("run", "--rm", image, "cat", "/msg.txt")
    assert ran.stdout == "through the registry\n"
    _docker("rmi", image)
