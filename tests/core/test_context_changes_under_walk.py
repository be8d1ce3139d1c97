"""An entry of the context listed by the hash walk, then gone or of another type when read:
what an editor's save does (vim writes and deletes '4913', emacs makes and removes its
'.#name' lock symlink), or a package install. The walk is done again. Before, the build
failed at once (exit 2) with 'cannot stat .../4913: No such file or directory' and the
hint to make it readable (5% of hashes with a file written and deleted every 0.5 ms
beside them), and a symlink gone before its readlink was an internal error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from rtbuild.context import _hashing
from rtbuild.context._hashing import hash_context
from rtbuild.errors import BuildContextError


def _tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "keep.txt").write_text("kept\n")
    (root / "top.txt").write_text("top\n")


def _around_listing(
    monkeypatch: pytest.MonkeyPatch,
    directory: Path,
    *,
    before: Callable[[], None] | None = None,
    after: Callable[[], None] | None = None,
    times: int | None = 1,
) -> list[int]:
    """Run ``before`` / ``after`` the walk lists ``directory`` (the first ``times`` times;
    ``None``: every time); the list of listings changed."""
    done: list[int] = []
    original = _hashing.list_dir

    def listing(path: str) -> tuple[int, list[os.DirEntry[str]]]:
        changing = path == str(directory) and (times is None or len(done) < times)
        if changing:
            done.append(1)
            if before is not None:
                before()
        fd, entries = original(path)
        if changing and after is not None:
            after()
        return fd, entries

    monkeypatch.setattr(_hashing, "list_dir", listing)
    return done


def _digest_of(root: Path) -> str:
    return hash_context(str(root), use_cache=False).digest


@pytest.mark.parametrize("kind", ["file", "symlink", "directory"])
def test_an_entry_deleted_after_the_listing_is_walked_again(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    root = tmp_path / "ctx"
    _tree(root)
    expected = _digest_of(root)
    swap = root / "sub" / "4913"
    if kind == "file":
        swap.write_text("x")
    elif kind == "symlink":
        swap.symlink_to("user@host.1234")  # an emacs lock file
    else:
        swap.mkdir()
    delete = swap.rmdir if kind == "directory" else swap.unlink
    if kind == "directory":  # listed and stat-ed with its parent, gone when its own turn comes
        calls = _around_listing(monkeypatch, swap, before=delete)
    else:  # listed, gone when stat-ed (a file) or read (a symlink's target, when its key is cached)
        calls = _around_listing(monkeypatch, root / "sub", after=delete)
    assert hash_context(str(root)).digest == expected
    assert calls == [1]


def test_a_symlink_gone_before_its_target_is_read(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stat-ed, then gone before readlink: an internal error (FileNotFoundError) before."""
    root = tmp_path / "ctx"
    _tree(root)
    expected = _digest_of(root)
    lock = root / "sub" / ".#keep.txt"
    lock.symlink_to("user@host.1234")
    original = os.readlink
    gone: list[str] = []

    def readlink(path: str) -> str:
        if path == str(lock) and not gone:
            gone.append(path)
            lock.unlink()
        return original(path)

    monkeypatch.setattr(_hashing.os, "readlink", readlink)
    assert hash_context(str(root), use_cache=False).digest == expected
    assert gone == [str(lock)]


def test_a_directory_that_became_a_file_is_walked_again(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed and stat-ed as a directory with its parent, a file when its turn comes: it
    was 'cannot read ...: Not a directory' with the hint to fix the permissions."""
    root = tmp_path / "ctx"
    _tree(root)
    target = root / "sub" / "build"
    target.mkdir()

    def to_file() -> None:
        target.rmdir()
        target.write_text("now a file\n")

    calls = _around_listing(monkeypatch, target, before=to_file)
    changed = hash_context(str(root), use_cache=False).digest
    assert calls == [1]
    monkeypatch.undo()
    assert changed == _digest_of(root)  # the tree as it is now: build a file


def test_a_context_that_never_holds_still_names_the_path_and_the_writer(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ctx"
    _tree(root)
    swap = root / "sub" / "4913"
    # Back before every listing, gone right after it: every walk meets it gone.
    _around_listing(monkeypatch, root / "sub", before=lambda: swap.write_text("x"), after=swap.unlink, times=None)
    with pytest.raises(BuildContextError) as caught:
        hash_context(str(root), use_cache=False)
    error = caught.value
    assert str(swap) in error.message and "changed while rtbuild read the context" in error.message
    assert "it was deleted" in error.message and "3 walks" in error.message
    assert error.hint is not None and ".dockerignore" in error.hint and "permission" not in error.hint
    assert error.step == "hash context"
