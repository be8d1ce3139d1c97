"""A Dockerfile (or .dockerignore) rewritten with its size and mtime kept (`cp -p`,
`touch -d`, `rsync -a`) while the walk never stat-checks it: .dockerignore leaves it out,
or -f names one outside the context. BuildKit syncs it incrementally too and kept the old
text: the rebuild ran the old RUN under the new digest, and every later build reused it
(reproduced on Docker 20.10: /mark 'one' after the Dockerfile said 'two'). The walk now
lists it with the stat-invisible changes, which marks the context for a whole send."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rtbuild.context import clear_stale_sync, context_digest, stale_sync_marker

OLD = 1_600_000_000


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, ns=(OLD * 10**9, OLD * 10**9))


@pytest.mark.parametrize("where", ["ignored", "outside", "dockerignore"])
def test_a_same_size_rewrite_of_a_file_the_walk_skips_marks_the_context(tmp_path: Path, where: str) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "app.txt").write_text("app\n")
    dockerfile = tmp_path / "Dockerfile.out" if where == "outside" else ctx / "Dockerfile"
    _rewrite(dockerfile, "FROM scratch\nCOPY app.txt /one\n")
    ignore = ctx / ".dockerignore"
    _rewrite(ignore, "Dockerfile\n.dockerignore\n")
    args = ["-f", str(dockerfile)] if where == "outside" else []
    first = context_digest(str(ctx), args)
    assert not first.stat_invisible and not stale_sync_marker(str(ctx)).exists()
    changed = ignore if where == "dockerignore" else dockerfile
    _rewrite(changed, changed.read_text().replace("one", "two").replace("Dockerfile\n", "Dockerfilf\n"))
    second = context_digest(str(ctx), args)
    assert second.digest != first.digest
    assert second.stat_invisible == [str(changed)]
    assert stale_sync_marker(str(ctx)).exists()
    clear_stale_sync(str(ctx))
    assert not context_digest(str(ctx), args).stat_invisible  # seen once; the marker keeps it


def test_an_ordinary_edit_marks_nothing(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (ctx / ".dockerignore").write_text("Dockerfile\n")
    context_digest(str(ctx))
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    assert not context_digest(str(ctx)).stat_invisible
    assert not stale_sync_marker(str(ctx)).exists()
