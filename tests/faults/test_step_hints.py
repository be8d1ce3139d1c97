"""A step that fails without an exit code (the engine, not the command, gave up on it)
says what to do: the most common, a COPY whose source is not in the context, had no hint
at all (``"hint": null`` in --json). (A step on an engine without a network:
test_dockerd_dies.py; every other such error: test_error_hints.py.)"""

from __future__ import annotations

from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild.errors import BuildFailedError

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


@pytest.mark.parametrize(
    "instruction",
    [
        "COPY not-in-the-context.txt /x",
        "ADD not-in-the-context.txt /x",
        "COPY --from=busybox:latest /not-in-the-image /x",
        "RUN --mount=type=bind,source=not-in-the-context.txt,target=/x true",
    ],
    ids=["copy", "add", "copy-from", "run-mount"],
)
def test_a_missing_source_is_named_with_a_hint(images: h.Images, context: Path, instruction: str) -> None:
    (context / "Dockerfile").write_text(f"FROM busybox:latest\n{instruction}\n")
    with pytest.raises(BuildFailedError) as info:
        h.build(images, context)
    assert info.value.step == instruction
    assert "not-in-the-" in info.value.message  # the engine's words, which name the path
    hint = info.value.hint or ""
    assert "build context" in hint and ".dockerignore" in hint and "--from" in hint, hint
    assert h.inspect(images.cli, images.tag()) is None
