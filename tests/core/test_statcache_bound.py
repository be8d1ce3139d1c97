"""The stat-cache directory is bounded: one file per context directory ever hashed piled up
(contexts in temporary directories, such as a runtime image's dependency stage, are never
hashed again), so writing a new one pushes out the least recently used."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from rtbuild.context import _statcache
from rtbuild.context._hashing import hash_context


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_statcache, "MAX_CONTEXT_CACHES", 4, raising=False)
    return tmp_path / "cache" / "rtbuild" / "context"


def _context(root: Path, name: str) -> str:
    ctx = root / name
    ctx.mkdir()
    (ctx / "file").write_text(name)
    past = time.time() - 10  # not "racy": its entries are cached
    os.utime(ctx / "file", (past, past))
    return str(ctx)


def _age(path: str, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_a_new_context_pushes_out_the_least_recently_used_cache(caches: Path, tmp_path: Path) -> None:
    contexts = [_context(tmp_path, f"ctx{i}") for i in range(6)]
    for age, ctx in zip((50, 40, 30, 20), contexts[:4], strict=True):
        hash_context(ctx)
        _age(_statcache.cache_path(ctx), age)
    hash_context(contexts[4])
    left = {p.name for p in caches.iterdir()}
    assert len(left) == 4
    assert os.path.basename(_statcache.cache_path(contexts[0])) not in left  # the oldest went
    assert os.path.basename(_statcache.cache_path(contexts[4])) in left  # the new one stays
    hash_context(contexts[5])
    assert os.path.basename(_statcache.cache_path(contexts[1])) not in {p.name for p in caches.iterdir()}


def test_rewriting_a_known_context_removes_nothing(caches: Path, tmp_path: Path) -> None:
    contexts = [_context(tmp_path, f"ctx{i}") for i in range(4)]
    for ctx in contexts:
        hash_context(ctx)
    (caches / "extra-from-another-version.marshal").write_bytes(b"x")  # five files now
    (Path(contexts[0]) / "new").write_text("changed")
    _age(str(Path(contexts[0]) / "new"), 10)
    hash_context(contexts[0])  # its cache is rewritten, not created
    assert len(list(caches.iterdir())) == 5
