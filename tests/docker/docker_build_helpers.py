"""Shared helpers for the docker build and no-op tests (real engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rtbuild import BuildRequest, BuildResult, Config, run_build
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild._framework.progress import Reporter

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))
BUSYBOX_DOCKERFILE = 'FROM busybox:latest\nARG GREETING=hi\nCOPY . /ctx\nRUN echo "$GREETING" > /greeting\n'


class Events(Reporter):
    """A reporter that keeps every event (use it with ``use_reporter``)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [fields for name, fields in self.events if name == kind]

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


def docker(cli: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli, *args], capture_output=True, text=True, check=check, timeout=300)


def inspect(cli: str, image: str) -> dict[str, Any] | None:
    proc = docker(cli, "image", "inspect", image, check=False)
    if proc.returncode != 0:
        return None
    data: dict[str, Any] = json.loads(proc.stdout)[0]
    return data


@dataclass
class Images:
    """Unique image names for one test; every tag and built ID is removed afterwards."""

    cli: str
    repo: str
    ids: set[str] = field(default_factory=set)

    def tag(self, name: str = "latest") -> str:
        return f"{self.repo}:{name}"

    def remember(self, result: BuildResult) -> BuildResult:
        image_id = result.details.get("image_id")
        if image_id:
            self.ids.add(str(image_id))
        return result

    def cleanup(self) -> None:
        proc = docker(self.cli, "images", "--format", "{{.Repository}}:{{.Tag}}", self.repo, check=False)
        refs = [ref for ref in proc.stdout.split() if ref]
        for ref in refs:
            info = inspect(self.cli, ref)
            if info:
                self.ids.add(info["Id"])
        if refs:
            docker(self.cli, "image", "rm", "-f", *refs, check=False)
        for image_id in self.ids:
            info = inspect(self.cli, image_id)
            if info is None:
                continue
            # Its other tags that name this test's repository (`REPO-base:1`,
            # `localhost:5999/REPO:x`) go too; the image only once no tag is left: the same
            # content built by a test running beside this one (same ID) keeps its tags.
            tags = info.get("RepoTags") or []
            ours = [tag for tag in tags if self.repo in tag]
            if ours:
                docker(self.cli, "image", "rm", *ours, check=False)
            if len(ours) == len(tags):
                docker(self.cli, "image", "rm", "-f", image_id, check=False)


@pytest.fixture
def images(docker_engine: str) -> Iterator[Images]:
    found = Images(docker_engine, f"rtbuild-test/{uuid.uuid4().hex[:12]}")
    yield found
    found.cleanup()


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stat cache, logs and temp files of this test go under tmp_path."""
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME", "TMPDIR"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return tmp_path


@pytest.fixture
def context(tmp_path: Path, isolated_dirs: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    (ctx / "app.txt").write_text("version 1\n")
    return ctx


def build(
    images: Images,
    path: Path,
    tags: list[str] | None = None,
    *,
    config: Config | None = None,
    **fields: Any,
) -> BuildResult:
    """One build through the whole pipeline (hooks, plugins, builder) in-process."""
    request = BuildRequest(path=str(path), tags=tags or [images.tag()], **fields)
    config = config or Config()
    return images.remember(run_build(request, config=config, pm=get_plugin_manager(config)))


def log_files(state_home: Path) -> list[Path]:
    return sorted((state_home / "XDG_STATE_HOME").rglob("*.log"))


def cli_build(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([RTBUILD, "build", *args], capture_output=True, text=True, env=full_env, timeout=600)
