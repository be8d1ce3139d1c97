"""BuildSession: a Dockerfile or .dockerignore that .dockerignore leaves out of the walk,
with another hard link outside the context, edited through that outside name.

Both always count in the digest (Docker always sends them), but the walk's set of
multiply-linked files (stat-ed again on every answer from the watch) came from the walk
alone, and a write through the outside name raises no event in the context: the session
answered "unchanged" (reproduced on Docker: the image held `echo one`, the Dockerfile
`echo two`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import rtbuild.context._hashing
import rtbuild.context._snapshot
from rtbuild.context import context_digest
from rtbuild.context._resident import ResidentDigests, resident


@pytest.mark.parametrize("name", ["Dockerfile", ".dockerignore"])
def test_an_ignored_dockerfile_edited_through_a_hard_link_outside(
    context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    window_ns = 200_000_000  # the racy window, shortened so the test need not wait 2 s
    monkeypatch.setattr(rtbuild.context._snapshot, "RACY_NS", window_ns)
    monkeypatch.setattr(rtbuild.context._hashing, "_RACY_NS", window_ns)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (context / "app.py").write_text("app")
    (context / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    outside = tmp_path / "shared"
    os.link(context / name, outside)
    time.sleep(window_ns / 1e9 + 0.05)
    digests = ResidentDigests()
    try:
        with resident(digests):
            first = context_digest(str(context)).digest
            assert context_digest(str(context)).digest == first
            assert digests.hits == 1  # untouched: still answered from the watch
            with open(outside, "r+") as handle:  # in place: the same inode, the outside name
                handle.write("FROM busybox\n" if name == "Dockerfile" else "app.py\n")
            last = context_digest(str(context)).digest
        truth = context_digest(str(context), use_cache=False).digest
        assert truth != first, "the edit did not change the digest"
        assert last == truth, "a changed context was answered from the watch"
    finally:
        digests.close()
