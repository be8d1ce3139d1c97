"""Extended attributes of context entries: Docker 20.10's BuildKit copies ``user.*`` (and
``trusted.*``) attributes of files and directories into the image layer, but its incremental
context sync does not send an attribute-only change (``setfattr`` moves ctime alone):
reproduced on the engine, the layer kept ``user.x=1`` after ``setfattr -v 2``, and rtbuild's
digest, blind to attributes, called the build cached. The digest line now carries the
attributes an entry has, and a change of them alone marks the context for a whole send.
Entries without attributes keep their old lines: a context without any keeps its digest."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import xxhash
from rtbuild.context import _hashing, clear_stale_sync, context_digest, hash_context, stale_sync_marker

OLD = 1_600_000_000


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_hashing, "_RACY_NS", 0)  # let the stat cache vouch at once


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "sub").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n")
    (root / "sub" / "f").write_text("f\n")
    (root / "g").write_text("g\n")
    for path in [*root.rglob("*"), root]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.utime(path, (OLD, OLD))
    return root


def _setxattr(path: Path, name: str, value: bytes) -> None:
    try:
        os.setxattr(path, name, value)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            raise
        message = f"{path.parent}'s filesystem refuses user extended attributes ({exc.strerror})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)


@pytest.mark.parametrize("entry", ["sub/f", "sub"])
def test_an_xattr_only_change_changes_the_digest_and_marks_a_whole_send(ctx: Path, entry: str) -> None:
    _setxattr(ctx / entry, "user.x", b"1")
    first = context_digest(str(ctx))
    assert context_digest(str(ctx)).cache_hits  # the stat cache vouches: the case that missed it
    clear_stale_sync(str(ctx))
    _setxattr(ctx / entry, "user.x", b"2")
    second = context_digest(str(ctx))
    assert second.digest != first.digest
    assert second.stat_invisible == [entry]
    assert stale_sync_marker(str(ctx)).exists()
    clear_stale_sync(str(ctx))
    third = context_digest(str(ctx))
    assert third.digest == second.digest and not third.stat_invisible
    os.removexattr(ctx / entry, "user.x")
    assert context_digest(str(ctx)).digest not in (first.digest, second.digest)


def test_a_first_xattr_on_a_file_changes_the_digest(ctx: Path) -> None:
    first = context_digest(str(ctx)).digest
    _setxattr(ctx / "g", "user.note", b"")
    assert context_digest(str(ctx)).digest != first


# The digest of the fixture's tree as computed before attributes were hashed: a context
# without attributes keeps it (no rebuild after the upgrade), through the cache or not.
GOLDEN = "a9ccd23e2413bdc6f179c737efcf7dca"


def test_a_context_without_xattrs_keeps_its_digest(ctx: Path) -> None:
    assert not any(os.listxattr(path) for path in [*ctx.rglob("*"), ctx])
    lines = [
        "Dockerfile\0f644:" + xxhash.xxh3_128_hexdigest(b"FROM scratch\nCOPY . /ctx\n") + "\n",
        "g\0f644:" + xxhash.xxh3_128_hexdigest(b"g\n") + "\n",
        "sub\0d755\n",
        "sub/f\0f644:" + xxhash.xxh3_128_hexdigest(b"f\n") + "\n",
    ]
    assert xxhash.xxh3_128_hexdigest("".join(lines).encode()) == GOLDEN
    assert hash_context(str(ctx), use_cache=False).digest == GOLDEN
    assert hash_context(str(ctx)).digest == GOLDEN
    assert hash_context(str(ctx)).digest == GOLDEN  # from the cache
