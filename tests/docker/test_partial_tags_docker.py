"""A request whose tags are only partly current: one tag carries the inputs' digest, the
others are missing or name an older image. The engine build is skipped and the other tags
are pointed at the current image; before, the engine built again (Docker 20.10 gives that
build a new image ID, so the tag already current changed ID too and was pushed anew)."""

from __future__ import annotations

from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def _id(images: h.Images, tag: str) -> str | None:
    found = h.inspect(images.cli, tag)
    return None if found is None else str(found["Id"])


def test_a_tag_added_to_a_current_one_is_tagged_not_built(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    one, two, three = images.tag("one"), images.tag("two"), f"localhost:5999/{images.tag('three')}"
    first = h.build(images, context, [one])
    second = h.build(images, context, [one, two, three])
    assert second.cached and len(h.log_files(isolated_dirs)) == 1  # no engine build
    assert _id(images, one) == _id(images, two) == _id(images, three) == first.details["image_id"]
    assert second.details["image_id"] == first.details["image_id"]
    # Now every tag is current: an ordinary no-op.
    assert h.build(images, context, [one, two, three]).cached


def test_an_older_image_under_a_tag_is_replaced_by_the_current_one(
    images: h.Images, context: Path, isolated_dirs: Path
) -> None:
    one, two = images.tag("one"), images.tag("two")
    old = h.build(images, context, [one, two])
    (context / "app.txt").write_text("version 2\n")
    new = h.build(images, context, [two])  # two moves on; one keeps the old content
    assert not new.cached and _id(images, one) == old.details["image_id"]
    again = h.build(images, context, [one, two])
    assert again.cached and _id(images, one) == _id(images, two) == new.details["image_id"]
    assert h.docker(images.cli, "run", "--rm", one, "cat", "/ctx/app.txt").stdout == "version 2\n"


def test_no_tag_current_still_builds(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    one, two = images.tag("one"), images.tag("two")
    h.build(images, context, [one])
    (context / "app.txt").write_text("version 3\n")
    rebuilt = h.build(images, context, [one, two])
    assert not rebuilt.cached
    assert _id(images, one) == _id(images, two) == rebuilt.details["image_id"]
