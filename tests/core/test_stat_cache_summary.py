"""The stat cache's head: an unchanged context is answered from the last walk's summary
without reading the cache's body, and every way of not matching it still gives the
digest a walk without any cache gives."""

from __future__ import annotations

import marshal
import os
import time
from pathlib import Path

import pytest
from rtbuild.context import PatternMatcher, _hashing, _statcache, hash_context
from rtbuild.context._statcache import CACHE_VERSION, StatCache, cache_format

OLD = 1_600_000_000  # seconds: far outside the racy window


#: The racy window, shortened for these tests (2 s in use) so they need not wait 2 s each.
WINDOW_NS = 200_000_000


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture(autouse=True)
def _short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_hashing, "_RACY_NS", WINDOW_NS)


def _tree(root: Path) -> Path:
    ctx = root / "ctx"
    for rel, text in {
        "Dockerfile": "FROM scratch\n",
        "a/one.txt": "1",
        "a/deep/two.txt": "2",
        "b/three.txt": "3",
        "z/last.txt": "last",
        "zzz/keep.txt": "keep",
        "zzz/drop.txt": "drop",
    }.items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(text)
    _age(ctx)
    return ctx


def _age(ctx: Path) -> None:
    """Old mtimes, and ctimes (which cannot be set back) out of the racy window."""
    for path in [*ctx.rglob("*"), ctx]:
        os.utime(path, (OLD, OLD), follow_symlinks=False)
    time.sleep(WINDOW_NS / 1e9 + 0.05)


def _fresh_process() -> None:
    """Forget what this process read or wrote, as a new CLI process would."""
    _statcache._LOADED.clear()


def _no_body(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: StatCache) -> dict[str, object]:
        raise AssertionError("the cache's body was read")

    monkeypatch.setattr(StatCache, "_load_body", refuse)


def _uncached(ctx: Path, matcher: PatternMatcher | None = None) -> str:
    return hash_context(str(ctx), matcher, use_cache=False).digest


def test_an_unchanged_context_is_answered_from_the_head_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _tree(tmp_path)
    first = hash_context(str(ctx))
    assert first.cold and first.bytes_hashed > 0
    _fresh_process()
    _no_body(monkeypatch)
    again = hash_context(str(ctx))
    assert (again.digest, again.files, again.cache_hits, again.bytes_hashed) == (
        first.digest,
        first.files,
        first.files,
        0,
    )
    assert not again.cold
    assert again.changed_since_walk() is None  # the walk's own record is kept as before


@pytest.mark.parametrize("where", ["a/deep/two.txt", "z/last.txt", "Dockerfile"])
def test_a_change_anywhere_reads_only_that_file(tmp_path: Path, where: str) -> None:
    ctx = _tree(tmp_path)
    hash_context(str(ctx))
    _fresh_process()
    (ctx / where).write_text("changed!")
    os.utime(ctx / where, (OLD + 10, OLD + 10))
    result = hash_context(str(ctx))
    assert result.digest == _uncached(ctx)
    assert result.bytes_hashed == len("changed!")
    assert result.cache_hits == result.files - 1


def test_new_and_removed_directories_give_the_fresh_digest(tmp_path: Path) -> None:
    ctx = _tree(tmp_path)
    hash_context(str(ctx))
    (ctx / "a" / "deep" / "two.txt").unlink()
    (ctx / "a" / "deep").rmdir()
    (ctx / "b" / "new").mkdir()
    (ctx / "b" / "new" / "n.txt").write_text("n")
    _age(ctx)
    _fresh_process()
    assert hash_context(str(ctx)).digest == _uncached(ctx)


def test_walking_fewer_directories_than_last_time_gives_the_fresh_digest(tmp_path: Path) -> None:
    """A pattern change that stops the walk from entering an excluded directory leaves
    every walked directory's keys as they were: only the count tells."""
    ctx = _tree(tmp_path)
    reincluding = PatternMatcher(["zzz", "!zzz/keep.txt"])  # "zzz/" is the last directory walked
    excluding = PatternMatcher(["zzz"])
    assert hash_context(str(ctx), reincluding).digest == _uncached(ctx, reincluding)
    _fresh_process()
    fewer = hash_context(str(ctx), excluding)
    assert fewer.digest == _uncached(ctx, excluding) != _uncached(ctx, reincluding)


def test_a_head_that_disagrees_with_its_body_still_gives_the_fresh_digest(tmp_path: Path) -> None:
    """A body from another walk than its head (any version may be read): the directories
    matched on the head are checked against the body before their listings are used."""
    ctx = _tree(tmp_path)
    path = StatCache(str(ctx)).path
    hash_context(str(ctx))
    with_old_body = Path(path).read_bytes()
    (ctx / "a" / "one.txt").write_text("new one")
    _age(ctx)  # out of the racy window: "a/" is summarised with its new keys
    hash_context(str(ctx))
    new_file = Path(path).read_bytes()
    head_len = 4 + int.from_bytes(new_file[:4], "little")
    old_head_len = 4 + int.from_bytes(with_old_body[:4], "little")
    Path(path).write_bytes(new_file[:head_len] + with_old_body[old_head_len:])
    (ctx / "z" / "last.txt").write_text("later change")
    os.utime(ctx / "z" / "last.txt", (OLD + 20, OLD + 20))
    _fresh_process()
    assert hash_context(str(ctx)).digest == _uncached(ctx)


def test_a_recent_file_is_never_vouched_for_by_the_head(tmp_path: Path) -> None:
    """A file written within the racy window could be rewritten without a visible stat
    change: its directory is not summarised, so the next walk reads that file again."""
    ctx = _tree(tmp_path)
    (ctx / "b" / "three.txt").write_text("x")  # written now: racy
    hash_context(str(ctx))
    summary = StatCache(str(ctx)).summary
    assert summary is not None and summary[3][summary[2].index("b/")] == b""
    _fresh_process()
    again = hash_context(str(ctx))
    assert again.bytes_hashed == 1 and again.digest == _uncached(ctx)


def test_collecting_paths_reads_the_body(tmp_path: Path) -> None:
    ctx = _tree(tmp_path)
    hash_context(str(ctx))
    _fresh_process()
    paths = hash_context(str(ctx), collect_paths=True).paths or []
    assert ("z/last.txt", "f") in paths and ("a/deep", "d") in paths


def test_the_format_of_this_and_older_caches_is_told(tmp_path: Path) -> None:
    ctx = _tree(tmp_path)
    hash_context(str(ctx))
    assert cache_format(Path(StatCache(str(ctx)).path).read_bytes()) == (CACHE_VERSION, str(ctx))
    assert cache_format(marshal.dumps((4, str(ctx), {}))) == (4, str(ctx))
    assert cache_format(b"not a cache") is None


def test_an_older_format_is_replaced_and_then_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _tree(tmp_path)
    path = Path(StatCache(str(ctx)).path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(marshal.dumps((4, str(ctx), {"": (b"x", "bogus\n", 1, marshal.dumps({}))})))
    first = hash_context(str(ctx))
    assert first.cold and first.digest == _uncached(ctx)
    _fresh_process()
    _no_body(monkeypatch)
    assert hash_context(str(ctx)).digest == first.digest
