"""``--exclude`` patterns are cleaned as ``.dockerignore`` lines are: ``/logs`` is ``logs``.

The docs promise .dockerignore semantics, and a ``/logs`` line in the payload's own
.dockerignore left the directory out; the same pattern given with ``--exclude`` (or
``exclude=``) matched nothing, so the logs (or a secrets directory) reached the image.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._payload import resolve


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "agent"
    for rel in ("logs/run.log", "src/main.py", "top.log", "#notes", "src/logs/keep"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel + "\n")
    return root


def _files(root: Path, *exclude: str) -> set[str]:
    payload = resolve("extra-source", SourcePayload.directory(root, "/opt/agent", exclude=exclude))
    return {rel for rel, kind in payload.entries() if kind == "f"}


@pytest.mark.parametrize("pattern", ["/logs", "logs/", "./logs", "//logs", " logs "])
def test_a_pattern_is_cleaned_as_a_dockerignore_line(tmp_path: Path, pattern: str) -> None:
    root = _tree(tmp_path)
    (root / ".dockerignore").write_text(pattern + "\n")
    by_file = _files(root)
    (root / ".dockerignore").unlink()
    assert _files(root, pattern) == by_file - {".dockerignore"}
    assert "logs/run.log" not in by_file and "src/logs/keep" in by_file


def test_anchored_globs_and_names_that_look_like_comments(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert "top.log" not in _files(root, "/*.log")
    assert "#notes" not in _files(root, "#notes")  # a file name here, not a comment
    assert _files(root, "", "  ") == _files(root)  # blank patterns exclude nothing
