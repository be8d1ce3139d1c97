"""Helpers for the Podman and multi-platform tests: the real podman CLI, QEMU, clean-up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _processes import processes_naming as processes_naming  # re-exported for the podman tests
from rtbuild_podman import PodmanBuilder

PODMAN = shutil.which("podman") or "/usr/bin/podman"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"
BINFMT_AARCH64 = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
#: The per-architecture bases scripts/podman.sh makes (FROM scratch + Debian busybox-static).
ARCH_DOCKERFILE = "ARG TARGETARCH=amd64\nFROM rtbuild/busybox:${TARGETARCH}\nRUN uname -m > /arch\n"


def missing(what: str) -> None:
    """Skip, or under CI=true fail loudly (as tests/conftest.py does for dockerd)."""
    message = f"{what} (run `make engine` / scripts/podman.sh as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODMAN, *args], capture_output=True, text=True, check=check, timeout=timeout)


def require_podman() -> str:
    try:
        proc = podman("info", "--format", "{{.Store.GraphDriverName}}", check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        missing(f"podman does not run: {exc}")
    if proc.returncode != 0:
        missing(f"podman does not answer `podman info`: {proc.stderr.strip()[-300:]}")
    if podman("image", "exists", "docker.io/rtbuild/busybox:arm64", check=False).returncode != 0:
        missing("podman has no rtbuild/busybox:arm64 base")
    return PODMAN


def require_qemu() -> None:
    try:
        text = BINFMT_AARCH64.read_text()
    except OSError:
        missing(f"no qemu-aarch64 binfmt handler at {BINFMT_AARCH64}")
    flags = next((line.split(":", 1)[1] for line in text.splitlines() if line.startswith("flags:")), "")
    if not text.startswith("enabled") or "F" not in flags:
        missing("the qemu-aarch64 binfmt handler is not enabled with the F flag")


@dataclass
class Names:
    """Unique image names for one test; removes from podman (and docker) what it named."""

    made: list[str] = field(default_factory=list)

    def new(self, repo: str = "rt-podman-test/img") -> str:
        name = f"{repo}:{uuid.uuid4().hex[:10]}"
        self.made.append(name)
        return name

    def cleanup(self, docker_cli: str | None = None) -> None:
        for name in self.made:
            ref = name.rsplit(":", 1)
            # Per-platform tags a multi-platform build made next to the requested one.
            variants = [name, *(f"{ref[0]}:{ref[1]}-linux-{arch}" for arch in ("amd64", "arm64"))]
            podman("rmi", "-f", *variants, check=False)
            if docker_cli:
                subprocess.run([docker_cli, "rmi", *variants], capture_output=True, check=False)


@pytest.fixture(scope="session")
def podman_cli() -> str:
    return require_podman()


@pytest.fixture(scope="session")
def qemu() -> None:
    require_qemu()


@pytest.fixture
def builder(tmp_path: Path, podman_cli: str) -> PodmanBuilder:
    """A PodmanBuilder writing its logs under the test's own directory."""
    built = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    built.name = "podman"
    return built


@pytest.fixture
def names(podman_cli: str) -> Iterator[Names]:
    made = Names()
    yield made
    made.cleanup(docker_cli="/usr/bin/docker" if os.path.exists("/usr/bin/docker") else None)


@pytest.fixture(scope="session", autouse=True)
def _prune_podman_builds() -> Iterator[None]:
    yield
    # under xdist the controller prunes (tests/conftest.py), once all workers are done
    if shutil.which("podman") and "PYTEST_XDIST_WORKER" not in os.environ:
        podman("image", "prune", "-f", "--filter", "label=org.rtbuild.input-digest", check=False)


def external_containers() -> set[str]:
    """Every container in Podman's storage, Buildah's working containers included."""
    return {str(c["Id"]) for c in json.loads(podman("ps", "-a", "--external", "--format", "json").stdout or "[]")}


def runc_bundles_under(root: Path) -> list[str]:
    """The runc containers (a RUN step's) whose bundle lies under ``root``."""
    proc = subprocess.run(["runc", "list", "--format", "json"], capture_output=True, text=True, check=False)
    return [
        str(c["id"]) for c in json.loads(proc.stdout or "[]") or [] if str(c.get("bundle", "")).startswith(str(root))
    ]


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """rtbuild's environment without the machine's RTBUILD_/DOCKER_/XDG_ settings or
    REGISTRY_AUTH_FILE, with a HOME and a state dir of the test's own, and an empty Podman
    auth file at ``tmp_path/podman-auth.json`` (for ``extra`` to point REGISTRY_AUTH_FILE at)."""
    (tmp_path / "podman-auth.json").write_text("{}")
    (tmp_path / "home").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RTBUILD_", "DOCKER_", "XDG_")) and k != "REGISTRY_AUTH_FILE"
    }
    env.update(HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"), **extra)
    return env


def write_context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    return root
