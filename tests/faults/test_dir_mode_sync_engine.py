"""A directory's mode changed alone reaches the image: BuildKit's incremental context sync
does not send it (moby/buildkit#7176), so the rebuild kept the directory at its old mode
under the new digest, and every later build reused that image."""

from __future__ import annotations

import os
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def _mode(images: h.Images, path: str) -> str:
    out = h.docker(images.cli, "run", "--rm", "--network=none", images.tag(), "stat", "-c", "%a", path).stdout
    return str(out).strip()


def test_a_chmod_of_a_directory_alone_reaches_the_image(images: h.Images, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /ctx\n")
    (context / "sub").mkdir()
    (context / "sub" / "f").write_text("f\n")
    os.chmod(context / "sub", 0o755)
    h.build(images, context)
    h.build(images, context)  # a build the engine synchronised against: the case that missed it
    assert _mode(images, "/ctx/sub") == "755"
    os.chmod(context / "sub", 0o700)
    second = h.build(images, context)
    assert not second.cached
    assert _mode(images, "/ctx/sub") == "700"
    third = h.build(images, context)
    assert third.cached and third.details["image_id"] == second.details["image_id"]
