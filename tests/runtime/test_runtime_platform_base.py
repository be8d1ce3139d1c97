"""``rtbuild runtime --platform`` with a base the engine holds for one platform only.

A ``docker pull`` of a base index keeps the native platform's image under the name, and
BuildKit builds every other platform from the base's registry. The lock hash counted the
local image's ID alone, so after the base's index moved in its registry (a new arm64
image), a two-platform request was an exact hit of the runtime built on the old base, and
the arm64 image under the index kept the old base (reproduced: /mark said 'one' after the
base said 'two'). FROM scratch images and COPY only: no QEMU.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rtbuild import BuildRequest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image
from runtime_engine_helpers import docker, remove_repo

pytestmark = [pytest.mark.engine, pytest.mark.registry]
BOTH = "linux/amd64,linux/arm64"


@pytest.fixture
def repos(
    docker_engine: str, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    suffix = uuid.uuid4().hex[:8]
    base, runtime = registry.ref(f"rt-pbase-{suffix}"), registry.ref(f"rt-prt-{suffix}")
    yield base, runtime
    remove_repo(docker_engine, base)
    remove_repo(docker_engine, runtime)


def _mark(cli: str, image: str) -> str:
    docker(cli, "pull", "-q", "--platform", "linux/arm64", image)
    container = docker(cli, "create", "--platform", "linux/arm64", image, "/x").stdout.strip()
    try:
        tar = subprocess.run([cli, "cp", f"{container}:/mark", "-"], capture_output=True, check=True, timeout=60)
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
            member = archive.extractfile("mark")
            assert member is not None
            return member.read().decode().strip()
    finally:
        docker(cli, "rm", "-f", container, check=False)


def test_a_base_index_that_moved_in_its_registry_is_no_exact_hit(
    docker_engine: str, repos: tuple[str, str], tmp_path: Path
) -> None:
    base, runtime = repos
    config = Config(load_plugins=[], platform=BOTH, push=True, builder="docker")
    pm = get_plugin_manager(config)
    builder = pm.create_builder("docker", config)
    ctx = tmp_path / "base"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY mark /mark\n")
    (ctx / "mark").write_text("one\n")
    builder.build_request(BuildRequest(path=str(ctx), tags=[f"{base}:1"], platform=BOTH, push=True))
    docker(docker_engine, "pull", "-q", "--platform", "linux/amd64", f"{base}:1")  # the engine's copy: amd64
    payload = tmp_path / "agent"
    payload.mkdir()
    (payload / "main.py").write_text("print('agent')\n")

    def runtime_image() -> Any:
        payloads = [SourcePayload.directory(payload, "/opt/a")]
        return build_runtime_image(config, f"{base}:1", [], repo=runtime, payloads=payloads, pm=pm)

    first = runtime_image()
    assert _mark(docker_engine, first.details["exact_tag"]) == "one"
    assert runtime_image().details["runtime_tier"] == "exact"  # unchanged: reused

    (ctx / "mark").write_text("two\n")  # the base index moves; the local amd64 copy stays
    builder.build_request(BuildRequest(path=str(ctx), tags=[f"{base}:1"], platform=BOTH, push=True))
    again = runtime_image()
    assert again.details["runtime_tier"] != "exact"
    assert _mark(docker_engine, again.details["exact_tag"]) == "two"
