"""Fixtures for the Kubernetes tests: the fake cluster (a protocol-level fake API server whose
"kubelet" runs pods in the local dockerd) and the machine's real kubectl as reference client.

Both need dockerd; the honesty tests need kubectl too. Under CI=true a missing one fails the
test loudly instead of skipping it (the repository-wide rule, see tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import Site, build_step_image, push_base, write_docker_config
from fake_cluster import FakeCluster

BUSYBOX = "rtbuild/busybox:latest"  # made by scripts/engine.sh (FROM scratch + busybox-static)


def _missing(what: str) -> None:
    message = f"{what} (run `make engine` / scripts/engine.sh as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of the machine's real kubectl (the fake's reference client)."""
    path = shutil.which("kubectl") or next(
        (p for p in ("/usr/bin/kubectl", "/usr/local/bin/kubectl") if os.access(p, os.X_OK)), None
    )
    if path is None:
        _missing("kubectl is not installed (it is the reference client of the fake cluster)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def fake_cluster(docker_engine: str, kubectl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    """One fake cluster for the session (https://127.0.0.1:<random port>, bearer token,
    namespace ``rtbuild-test``). Every container it started is removed when it stops.

    It asks for ``kubectl`` too: a fake whose reference client is missing is not checked, so
    under CI=true that fails loudly like a missing dockerd."""
    probe = subprocess.run([docker_engine, "image", "inspect", BUSYBOX], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        _missing(f"the base image {BUSYBOX} is missing")
    cluster = FakeCluster(workdir=tmp_path_factory.mktemp("fake-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(fake_cluster: FakeCluster) -> FakeCluster:
    """The session's fake cluster, emptied (no jobs, pods, secrets, events, faults, records)."""
    fake_cluster.reset()
    return fake_cluster


@pytest.fixture
def kube_env(fake_cluster: FakeCluster, tmp_path: Path) -> dict[str, str]:
    """Environment for kubectl/lightkube subprocesses: KUBECONFIG set, caches in tmp_path."""
    return {
        **os.environ,
        "KUBECONFIG": str(fake_cluster.kubeconfig_path),
        "KUBECACHEDIR": str(tmp_path / "kube-cache"),
        "HOME": str(tmp_path),
    }


# --- the Kubernetes builder's end-to-end fixtures (tests/kubernetes/_kbuilder_support.py) ---


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
