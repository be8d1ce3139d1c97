"""Helpers for the registry-side docker tests: test images, docker configs, the real CLI."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rtbuild._framework.progress import Reporter

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
RTBUILD = str(Path(sys.executable).with_name("rtbuild"))
BASE_IMAGE = "busybox:latest"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, timeout=300)


@contextlib.contextmanager
def random_layer_image(image: str, size: int) -> Iterator[str]:
    """A local image ``image`` of one layer holding ``size`` random bytes (neither gzip nor
    the engine's layer cache shortens its upload), removed afterwards."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("blob")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    subprocess.run([DOCKER, "import", "-", image], input=raw.getvalue(), capture_output=True, check=True)
    try:
        yield image
    finally:
        subprocess.run([DOCKER, "rmi", "-f", image], capture_output=True, check=False)


def local_image_id(name: str) -> str | None:
    proc = docker("image", "inspect", "--format", "{{.Id}}", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


@dataclass
class ImageTags:
    """Tags busybox under unique names and removes every tag it made afterwards."""

    made: list[str] = field(default_factory=list)

    def tag(self, registry_host: str, name: str = "rt-test/img") -> str:
        image = f"{registry_host}/{name}:{uuid.uuid4().hex[:10]}"
        docker("tag", BASE_IMAGE, image)
        self.made.append(image)
        return image

    def unique(self, registry_host: str, name: str = "rt-test/unique") -> str:
        """A one-layer image whose layer no other image shares (so a pull really downloads)."""
        image = f"{registry_host}/{name}:{uuid.uuid4().hex[:10]}"
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            data = f"{image}\n".encode()
            info = tarfile.TarInfo("rtbuild-test.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        subprocess.run([DOCKER, "import", "-", image], input=raw.getvalue(), capture_output=True, check=True)
        self.made.append(image)
        return image

    def name(self, registry_host: str, name: str = "rt-test/img") -> str:
        """A unique name that is never created locally (but is cleaned up if a test pulls it)."""
        image = f"{registry_host}/{name}:{uuid.uuid4().hex[:10]}"
        self.made.append(image)
        return image

    def cleanup(self) -> None:
        for image in self.made:
            docker("rmi", image, check=False)


@pytest.fixture
def scratch_images(docker_engine: str) -> Iterator[ImageTags]:
    images = ImageTags()
    yield images
    images.cleanup()


def docker_config(directory: Path, auths: dict[str, tuple[str, str]]) -> Path:
    """Write ``directory/config.json`` with base64 ``auth`` entries, as `docker login` does."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = {host: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for host, (u, p) in auths.items()}
    (directory / "config.json").write_text(json.dumps({"auths": entries}))
    return directory


def run_cli(
    *args: str, cwd: Path, docker_config_dir: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``rtbuild`` console script in a clean directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")}
    env["DOCKER_CONFIG"] = str(docker_config_dir)
    env.update(extra_env or {})
    return subprocess.run([RTBUILD, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RecordingReporter(Reporter):
    """Keeps what a pull or push reported, to check that progress streams."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def line(self, text: str, *, source: str = "build") -> None:
        self.lines.append((source, text))

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]
