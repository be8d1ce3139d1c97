"""A directory's mode changed alone: BuildKit's incremental context sync never sends it
(moby/buildkit#7176), so after `chmod 700 sub` the rebuilt image still held sub at 0755,
labelled with the new digest, and every later build reused it (reproduced on Docker 20.10).
The walk that sees the change marks the context, so the next engine build sends it whole
(a new build-node ID, rtbuild_docker.sync), as for a file rewritten with its mtime put back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rtbuild.context import _hashing, clear_stale_sync, context_digest, stale_sync_marker

OLD = 1_600_000_000


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_hashing, "_RACY_NS", 0)


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n")
    (root / "sub" / "f").write_text("f\n")
    for path in [*root.rglob("*"), root]:
        os.utime(path, (OLD, OLD))
    return root


@pytest.mark.parametrize("directory", ["sub", "sub/deeper"])
def test_a_directory_mode_change_marks_the_context_for_a_whole_send(ctx: Path, directory: str) -> None:
    first = context_digest(str(ctx))
    assert not first.stat_invisible and not stale_sync_marker(str(ctx)).exists()
    os.chmod(ctx / directory, 0o700)
    second = context_digest(str(ctx))
    assert second.digest != first.digest
    assert second.stat_invisible == [directory]
    assert stale_sync_marker(str(ctx)).exists()
    clear_stale_sync(str(ctx))
    assert not context_digest(str(ctx)).stat_invisible  # seen once, kept by the marker


def test_file_edits_and_new_directories_do_not(ctx: Path) -> None:
    context_digest(str(ctx))
    (ctx / "sub" / "f").write_text("longer now\n")
    (ctx / "new").mkdir()
    assert not context_digest(str(ctx)).stat_invisible
    assert not stale_sync_marker(str(ctx)).exists()
