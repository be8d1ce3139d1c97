"""Support for the Kubernetes builder's end-to-end tests: the buildah step image (built
locally with rtbuild's Docker backend, idempotently), a base image in the test registry,
and running the real ``rtbuild`` CLI against the fake cluster."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
STEP_IMAGE_DIR = REPO / "builders" / "kubernetes" / "step-image"
RTBUILD = str(Path(sys.executable).with_name("rtbuild"))
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def step_image_tag() -> str:
    from rtbuild_kubernetes._version import STEP_IMAGE_TAG

    return f"rtbuild/buildah-step:{STEP_IMAGE_TAG}"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")}
    env.update(extra)
    return env


def rtbuild(*args: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RTBUILD, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def build_step_image(docker_engine: str) -> str:
    """Build the step image with rtbuild's Docker backend (its no-op skip makes a second
    call take well under a second); fail loudly if it cannot be built."""
    tag = step_image_tag()
    proc = subprocess.run(
        [RTBUILD, "build", str(STEP_IMAGE_DIR), "--builder", "docker", "-t", tag],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO,
    )
    if proc.returncode != 0:
        pytest.fail(f"building the buildah step image failed:\n{proc.stderr[-4000:]}", pytrace=False)
    return tag


@dataclass
class Site:
    """One test site: the fake cluster's kubeconfig, a registry, a docker config dir."""

    root: Path
    registry: str  # 127.0.0.1:PORT
    docker_config: Path
    base: str  # a base image in the registry
    password: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(DOCKER_CONFIG=str(self.docker_config), HOME=str(self.root), **extra)

    def context(self, name: str, dockerfile: str, files: dict[str, str] | None = None) -> Path:
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(dockerfile.replace("BASE", self.base))
        for rel, text in (files or {}).items():
            (directory / rel).parent.mkdir(parents=True, exist_ok=True)
            (directory / rel).write_text(text)
        return directory


def build_stand_in_step(directory: Path, script: str, tag: str, base: str) -> str:
    """A step image whose ``rtbuild-step`` is ``script`` (a stand-in for buildah that waits,
    sleeps or finishes as a test needs), built as ``tag`` on ``base``; returns ``tag``."""
    (directory / "rtbuild-step").write_text(script)
    (directory / "rtbuild-step").chmod(0o755)
    (directory / "Dockerfile").write_text(f"FROM {base}\nCOPY rtbuild-step /usr/local/bin/rtbuild-step\n")
    proc = subprocess.run([DOCKER, "build", "-q", "-t", tag, str(directory)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return tag


def write_docker_config(directory: Path, auths: dict[str, tuple[str, str]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    entries = {h: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for h, (u, p) in auths.items()}
    (directory / "config.json").write_text(json.dumps({"auths": entries}))
    return directory


def push_base(registry: str, docker_config: Path) -> str:
    """busybox in the test registry (the step's buildah pulls FROM images from there)."""
    image = f"{registry}/rtbuild-test/busybox:latest"
    subprocess.run([DOCKER, "tag", "busybox:latest", image], check=True, capture_output=True, timeout=60)
    proc = subprocess.run(
        [DOCKER, "--config", str(docker_config), "push", image], capture_output=True, text=True, timeout=300
    )
    # The registry holds it now; the local tag would outlive the session's registry.
    subprocess.run([DOCKER, "rmi", image], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return image


def write_config(path: Path, kubeconfig: Path, **settings: object) -> Path:
    lines = ["[builders.kubernetes]", f'kubeconfig = "{kubeconfig}"']
    for key, value in settings.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def running_build_pod(cluster: Any) -> dict[str, Any] | None:
    """The pod whose ``build`` container runs, if any."""
    for pod in cluster.list("pods", namespace=cluster.namespace):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == "build" and "running" in (status.get("state") or {}):
                return pod
    return None


@contextlib.contextmanager
def build_in_progress(
    site: Site, cluster: Any, name: str, run: str = "echo started && sleep 300", **settings: object
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """``rtbuild build --json`` of a 300 s ``RUN`` on the fake cluster, a Job deadline far beyond
    any test's bound (only what the test does ends the build in time): (the process, its running
    build pod). The process is killed on leaving if the test did not end it."""
    config = write_config(
        site.root / "rtbuild.toml",
        cluster.kubeconfig_path,
        step_image=step_image_tag(),
        active_deadline_seconds=900,
        **settings,
    )
    context = site.context(name, f"FROM BASE\nRUN {run}\n")
    args = [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/{name}:1"]
    proc = subprocess.Popen(
        [*args, "--json"], cwd=site.root, env=site.env(RTBUILD_CONFIG=str(config)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        pod = cluster.wait_for(lambda: running_build_pod(cluster) or proc.poll() is not None, timeout=180)
        assert proc.poll() is None, proc.communicate()
        yield proc, pod
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
