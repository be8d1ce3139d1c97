"""A request whose tags are only partly current (one carries the inputs' digest, the others
are missing or name an older image): ``podman build`` is skipped and the other tags are
pointed at the current image, as on Docker (tests/docker/test_partial_tags_docker.py);
before, podman built again."""

from __future__ import annotations

from pathlib import Path

import pytest
from _podman_support import Names, podman, write_context
from rtbuild import BuildRequest
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]


def _builds(builder: PodmanBuilder) -> int:
    """The engine builds so far: each writes a log, a no-op skip none."""
    logs = Path(builder.log_directory())
    return len(list(logs.glob("*.log"))) if logs.is_dir() else 0


def test_tags_added_or_older_are_tagged_not_built(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nCOPY app.txt /app.txt\n", {"app.txt": "one\n"})
    one, two, three = names.new(), names.new(), f"localhost:5999/{names.new()}"
    names.made.append(three)
    first = builder.build_request(BuildRequest(path=str(ctx), tags=[one]))
    second = builder.build_request(BuildRequest(path=str(ctx), tags=[one, two, three]))
    assert second.cached and _builds(builder) == 1  # no podman build
    assert builder.image_id(one) == builder.image_id(two) == builder.image_id(three) == first.details["image_id"]
    assert second.details["image_id"] == first.details["image_id"]
    assert builder.build_request(BuildRequest(path=str(ctx), tags=[one, two, three])).cached  # all current now

    (ctx / "app.txt").write_text("two\n")
    new = builder.build_request(BuildRequest(path=str(ctx), tags=[two]))  # two moves on, one stays old
    assert not new.cached and builder.image_id(one) == first.details["image_id"] != new.details["image_id"]
    again = builder.build_request(BuildRequest(path=str(ctx), tags=[one, two]))
    assert again.cached and _builds(builder) == 2
    assert builder.image_id(one) == builder.image_id(two) == new.details["image_id"]
    assert podman("run", "--rm", one, "cat", "/app.txt").stdout == "two\n"
