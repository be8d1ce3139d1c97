"""``ARG TARGETARCH`` + ``FROM base:${TARGETARCH}`` without --platform on the real engine.

Newer engines fill TARGETARCH with the engine's own platform; Docker 20.10 leaves the
declared ARG empty ('failed to parse stage name "base:"'), and rtbuild failed before the
engine ran (the engine answered 400 to 'inspect image base:'). rtbuild now resolves it from
the engine's /version (asked once per builder), passes it as a build arg, and the base it
names is an input of the no-op skip.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild import BuildRequest
from rtbuild_docker import DockerBuilder, engineplatform

pytestmark = pytest.mark.engine

images, isolated_dirs = h.images, h.isolated_dirs


@pytest.fixture
def arch_base(docker_engine: str) -> Iterator[tuple[str, str]]:
    """(repository, engine arch): REPOSITORY:ARCH is a local busybox tag."""
    version = json.loads(h.docker(docker_engine, "version", "--format", "{{json .Server}}").stdout)
    repo = f"rtbuild-test-archbase/{uuid.uuid4().hex[:12]}"
    h.docker(docker_engine, "tag", "busybox:latest", f"{repo}:{version['Arch']}")
    yield repo, version["Arch"]
    h.docker(docker_engine, "image", "rm", "-f", f"{repo}:{version['Arch']}", check=False)


def test_from_base_named_by_targetarch_builds_skips_and_follows_the_base(
    images: h.Images, isolated_dirs: Path, arch_base: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, arch = arch_base
    asked: list[str] = []
    real = engineplatform.engine_platform
    monkeypatch.setattr(engineplatform, "engine_platform", lambda api: asked.append(api.host) or real(api))
    ctx = isolated_dirs / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"ARG TARGETARCH\nFROM {repo}:${{TARGETARCH}}\nCOPY app.txt /app.txt\n")
    (ctx / "app.txt").write_text("app\n")
    builder = DockerBuilder()
    request = BuildRequest(path=str(ctx), tags=[images.tag()])

    assert f"--build-arg TARGETARCH={arch}" in builder.plan(request)  # the dry run shows it
    first = images.remember(builder.build_request(request))
    assert not first.cached
    second = builder.build_request(request)
    assert second.cached and second.details["image_id"] == first.details["image_id"]

    # The base re-tagged under the same name: an input, so the next build is on the new one.
    (isolated_dirs / "b").mkdir()
    (isolated_dirs / "b" / "Dockerfile").write_text("FROM busybox:latest\nCOPY mark /mark\n")
    (isolated_dirs / "b" / "mark").write_text("two\n")
    h.docker(images.cli, "build", "-q", "-t", f"{repo}:{arch}", str(isolated_dirs / "b"))
    third = images.remember(builder.build_request(request))
    assert not third.cached
    out = h.docker(images.cli, "run", "--rm", images.tag(), "cat", "/mark", "/app.txt").stdout
    assert out == "two\napp\n"
    assert len(asked) == 1  # the engine's platform is read once per builder
