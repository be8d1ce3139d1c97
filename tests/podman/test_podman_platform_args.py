"""``FROM base:${TARGETARCH}`` without --platform: Buildah fills TARGETARCH with this
machine's architecture, and rtbuild's no-op skip must read the same base."""

from __future__ import annotations

from pathlib import Path

import pytest
from _podman_support import Names, podman, write_context
from rtbuild import BuildRequest
from rtbuild.enginekit import native_platform
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]


def test_a_base_named_by_targetarch_without_a_platform_builds_and_is_an_input(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """A plain ``podman build`` of it builds from base:amd64 here. rtbuild resolved the FROM
    line with TARGETARCH empty and asked podman about ``base:`` ('invalid reference
    format'): the build failed at step 'inspect image' before podman ran."""
    arch = native_platform().split("/", 1)[1]
    repo = names.new("rt-podman-test/arch-base").rsplit(":", 1)[0]
    base = f"{repo}:{arch}"
    names.made.append(base)
    podman("tag", "docker.io/rtbuild/busybox:latest", base)
    ctx = write_context(tmp_path / "ctx", f"ARG TARGETARCH\nFROM {repo}:${{TARGETARCH}}\nRUN cat /mark || true\n")
    request = BuildRequest(path=str(ctx), tags=[names.new()])

    first = builder.build_request(request)
    assert not first.cached
    assert builder.build_request(request).cached  # the skip works for it

    # The base re-tagged under the same name: an input, so the next request builds on it.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "Dockerfile").write_text("FROM docker.io/rtbuild/busybox:latest\nRUN echo two > /mark\n")
    podman("build", "-q", "-t", base, str(tmp_path / "b"))
    again = builder.build_request(request)
    assert not again.cached
    out = podman("run", "--rm", request.tags[0], "cat", "/mark").stdout
    assert out.strip() == "two"
