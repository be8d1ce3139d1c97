"""A .dockerignore that is no file of patterns: a FIFO (the docker client opens it and waits
for a writer for ever), a directory, a symlink loop. Refused before the engine starts, on
the first build as on later ones. Before, a FIFO hung the first build for good (rtbuild and
the engine's client each waited on it), a directory or loop was built the first time (the
hash that would refuse it runs alongside the engine) and refused from the second on, and a
malformed pattern was the engine's 'invalid excludepatterns' with the catch-all hint."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("fifo", "is not a regular file (a FIFO, socket or device)"),
        ("directory", "is a directory, not a file"),
        ("loop", "Too many levels of symbolic links"),
        ("pattern", "bad .dockerignore pattern 'a[': missing closing ]"),
    ],
)
def test_an_unusable_dockerignore_is_refused_on_the_first_build(
    images: h.Images, context: Path, kind: str, words: str
) -> None:
    ignore = context / ".dockerignore"
    if kind == "fifo":
        os.mkfifo(ignore)
    elif kind == "directory":
        ignore.mkdir()
    elif kind == "pattern":  # the engine failed on it: 'invalid excludepatterns', with the catch-all hint
        ignore.write_text("a[\n")
    else:
        ignore.symlink_to(".dockerignore")
    proc = subprocess.run(
        [h.RTBUILD, "build", str(context), "-t", images.tag()], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{ignore} {words}" in proc.stderr or words in proc.stderr
    assert "step: read .dockerignore" in proc.stderr
    assert h.inspect(images.cli, images.tag()) is None  # the engine never ran
