"""An extended attribute changed alone builds again on Docker, and is never called cached.

What Docker 20.10 makes of user.* attributes is not image content: its layer archives (what
`docker save` and a push carry) hold none (moby's archive keeps security.capability only),
and the local layer directory of a build whose layer differs from an earlier one only in
them is whichever the engine registered first (measured on this host: after
`setfattr -v 2`, raw `docker build`s under a new build-node ID left user.x=1 in 4 of 4
fresh contexts; this test, which read that directory, passed for weeks and then failed on
every run once the engine held such a layer). So rtbuild promises what it controls: the
digest counts the attributes (on Podman they are in the pushed layer, see
tests/podman/test_podman_ignore.py), the change is never reported cached, and the next
build is a whole-context send."""

from __future__ import annotations

import os
from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild._framework.progress import use_reporter

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def test_an_xattr_change_alone_builds_again_with_the_whole_context(images: h.Images, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY f /ctx/f\n")
    (context / "f").write_text("f\n")
    try:
        os.setxattr(context / "f", "user.x", b"1")
    except OSError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the context's filesystem refuses user xattrs: {exc}", pytrace=False)
        pytest.skip(f"the context's filesystem refuses user xattrs: {exc}")
    h.build(images, context)
    os.setxattr(context / "f", "user.x", b"2")
    events = h.Events()
    with use_reporter(events):
        second = h.build(images, context)
    assert not second.cached, "an attribute change was reported cached"
    assert "fresh_sync" in events.kinds, events.kinds
    third = h.build(images, context)
    assert third.cached and third.details["image_id"] == second.details["image_id"]
    assert third.details["input_digest"] == second.details["input_digest"]
