"""An extended attribute changed alone reaches the image: Docker 20.10's BuildKit copies a
context file's user.* attributes into the layer, but its incremental sync does not send an
attribute-only change, and rtbuild's digest did not see it either, so the build was called
cached and the image kept user.x=1 after `setfattr -n user.x -v 2`."""

from __future__ import annotations

import os
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def _layer_xattr(images: h.Images, path: str) -> bytes | None:
    """The attribute as the image's top layer holds it (busybox has no getfattr; the layer's
    directory on the engine's overlay2 storage is what a container sees)."""
    data = h.inspect(images.cli, images.tag())
    assert data is not None and data["GraphDriver"]["Name"] == "overlay2", data
    upper = data["GraphDriver"]["Data"]["UpperDir"]
    try:
        return os.getxattr(os.path.join(upper, path.lstrip("/")), "user.x")
    except OSError:
        return None


def test_an_xattr_change_alone_reaches_the_image(images: h.Images, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY f /ctx/f\n")
    (context / "f").write_text("f\n")
    try:
        os.setxattr(context / "f", "user.x", b"1")
    except OSError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the context's filesystem refuses user xattrs: {exc}", pytrace=False)
        pytest.skip(f"the context's filesystem refuses user xattrs: {exc}")
    h.build(images, context)
    assert _layer_xattr(images, "/ctx/f") == b"1"
    os.setxattr(context / "f", "user.x", b"2")
    second = h.build(images, context)
    assert not second.cached
    assert _layer_xattr(images, "/ctx/f") == b"2"
    third = h.build(images, context)
    assert third.cached and third.details["image_id"] == second.details["image_id"]
