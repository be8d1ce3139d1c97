"""``--cache-to`` with a docker client that builds with ``docker build`` (20.10 with
DOCKER_BUILDKIT=1, or legacy) is refused before any work: that command has no --cache-to,
and the engine's 'unknown flag: --cache-to' came with the hint to check the --extra
arguments the user never passed. With buildx the flag reaches the command."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild import BuildRequest, CapabilityError
from rtbuild_docker.builder import DockerBuilder
from rtbuild_docker.buildkit import BuildClient


def _builder(mode: str) -> DockerBuilder:
    builder = DockerBuilder()
    builder._client = BuildClient("/usr/bin/docker", mode, "20.10.24+dfsg1")  # no probe of this machine's CLIs
    return builder


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


@pytest.mark.parametrize("mode", ["env", "legacy"])
def test_cache_to_without_buildx_is_a_capability_error(ctx: Path, mode: str) -> None:
    request = BuildRequest(path=str(ctx), tags=["app:1"], cache_to=["type=local,dest=/tmp/cache"])
    for attempt in (_builder(mode).plan, _builder(mode).build_request):
        with pytest.raises(CapabilityError) as raised:
            attempt(request)
        assert "--cache-to needs docker buildx" in str(raised.value) and raised.value.exit_code == 2
        assert raised.value.hint is not None and "docker-buildx" in raised.value.hint


def test_cache_to_with_buildx_reaches_the_command(ctx: Path) -> None:
    request = BuildRequest(path=str(ctx), tags=["app:1"], cache_to=["type=local,dest=/tmp/cache"])
    assert "--cache-to type=local,dest=/tmp/cache" in _builder("buildx").plan(request)


def test_cache_from_still_works_without_buildx(ctx: Path) -> None:
    request = BuildRequest(path=str(ctx), tags=["app:1"], cache_from=["app:0"])
    assert "--cache-from app:0" in _builder("env").plan(request)
