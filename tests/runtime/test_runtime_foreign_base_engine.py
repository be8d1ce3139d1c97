"""A runtime base that the engine holds only for another platform, on the real engine.

BuildKit uses a local image only for the platform it builds; for another it asks the
image's registry. A local linux/arm64 base on an amd64 engine (no --platform) therefore
failed with the hint to 'build or load the base image locally first', which it was. The
hint now names the base's platform and the --platform to give.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.enginekit import native_platform
from rtbuild.errors import BuildFailedError
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image
from runtime_engine_helpers import docker, remove_repo

pytestmark = [pytest.mark.engine]


@pytest.fixture
def foreign_base(docker_engine: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A local image made for the platform this machine is not (FROM scratch: no QEMU needed)."""
    other = "linux/arm64" if native_platform() != "linux/arm64" else "linux/amd64"
    repo = f"rtbuild-test/foreign-{uuid.uuid4().hex[:8]}"
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "mark").write_text("foreign\n")
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY mark /mark\n")
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    subprocess.run(
        [docker_engine, "build", "-q", "--platform", other, "-t", f"{repo}:base", str(tmp_path / "ctx")],
        check=True,
        capture_output=True,
        env=env,
        timeout=600,
    )
    yield f"{repo}:base", other
    remove_repo(docker_engine, repo)


@pytest.fixture
def foreign_repo(docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    name = f"rtbuild-test/rt-foreign-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


def test_a_base_here_only_for_another_platform_is_named_as_such(
    docker_engine: str, foreign_base: tuple[str, str], foreign_repo: str, tmp_path: Path
) -> None:
    base, other = foreign_base
    assert (
        docker(docker_engine, "image", "inspect", base, "--format", "{{.Architecture}}").stdout.strip()
        == (other.split("/")[1])
    )
    payload = tmp_path / "agent"
    payload.mkdir()
    (payload / "main.py").write_text("print('agent')\n")
    config = Config(load_plugins=[])
    pm = get_plugin_manager(config)
    with pytest.raises(BuildFailedError) as info:
        build_runtime_image(
            config, base, [], repo=foreign_repo, payloads=[SourcePayload.directory(payload, "/opt/a")], pm=pm
        )
    hint = info.value.hint or ""
    assert f"here only for {other}" in hint and f"--platform {other}" in hint, hint
    assert "load the base image locally first" not in hint
