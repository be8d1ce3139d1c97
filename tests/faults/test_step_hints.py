"""A step that fails without an exit code (the engine, not the command, gave up on it)
says what to do: the most common, a COPY whose source is not in the context, had no hint
at all (``"hint": null`` in --json). (A step on an engine without a network:
test_dockerd_dies.py; every other such error: test_error_hints.py.)"""

from __future__ import annotations

import json
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


def test_an_extra_argument_the_client_refuses_is_named(images: h.Images, context: Path) -> None:
    """The docker client refuses an --extra argument before the build: the message was its
    last line ("See 'docker build --help'."), with the catch-all hint."""
    out = h.cli_build(str(context), "-t", images.tag(), "--extra=--rtbuild-no-such-flag", "--json", "-q")
    assert out.returncode == 1, out.stderr
    document = json.loads(out.stdout)
    assert document["message"].endswith("unknown flag: --rtbuild-no-such-flag")
    assert "--extra" in document["hint"] and "build --help" in document["hint"]
