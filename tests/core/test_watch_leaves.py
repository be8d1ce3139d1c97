"""A watch skips listing leaf directories where link counts prove they are leaves.

On ext2/3/4, xfs and tmpfs a directory's link count is 2 plus its number of
subdirectories, so a count of 2 means there is nothing below it to watch. The count is
read after the directory's own watch began: a subdirectory made later raises an event.
Elsewhere (and for a mount point inside the context) every directory is listed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rtbuild.context import _watch


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    if _watch.filesystem_type(str(tmp_path)) not in _watch.COUNTED_LINKS:
        pytest.skip("the test directory's filesystem does not count directory links")
    root = tmp_path / "ctx"
    for rel in ("a/b/c", "a/leaf", "docs", "src/pkg"):
        (root / rel).mkdir(parents=True)
        (root / rel / "f.txt").write_text(rel)
    return root


def _dirs(root: Path) -> set[str]:
    return {str(root)} | {str(p) for p in root.rglob("*") if p.is_dir()}


def _spy_scandir(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[str]:
    listed: list[str] = []
    real = os.scandir

    def scandir(path: str) -> object:
        listed.append(os.path.relpath(path, root))
        return real(path)

    monkeypatch.setattr(_watch.os, "scandir", scandir)
    return listed


def test_leaves_are_watched_without_being_listed(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = _dirs(tree)
    listed = _spy_scandir(monkeypatch, tree)
    watch, why = _watch.try_watch(str(tree))
    assert watch is not None, why
    try:
        watch.rewatch()
        monkeypatch.undo()
        assert set(watch._wds.values()) == dirs, "a directory went unwatched"
        assert sorted(listed) == [".", "a", "a/b", "src"], "leaves were listed, or parents were not"
    finally:
        watch.close()


def test_a_directory_made_in_a_leaf_is_seen_and_watched_next_time(tree: Path) -> None:
    watch, why = _watch.try_watch(str(tree))
    assert watch is not None, why
    try:
        watch.rewatch()
        start = watch.generation
        (tree / "docs" / "new").mkdir()
        assert watch.generation != start, "a directory made in a leaf went unseen"
        watch.rewatch()
        assert str(tree / "docs" / "new") in watch._wds.values()
        start = watch.generation
        (tree / "docs" / "new" / "g.txt").write_text("inside the new directory")
        assert watch.generation != start, "a file written in the new directory went unseen"
    finally:
        watch.close()


@pytest.mark.parametrize("when", ["before the link count is read", "after the link count is read"])
def test_a_directory_made_around_the_link_count_is_never_missed(
    tree: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The count is read after the leaf's watch began: a subdirectory made before the read
    is listed (count 3), one made after it raises an event on the leaf's watch."""
    leaf = tree / "docs"
    made: list[Path] = []
    real_stat = os.stat

    def stat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        racing = not made and os.path.abspath(path) == str(leaf)
        if racing and when.startswith("before"):
            made.append(leaf / "raced")
            made[0].mkdir()
        result = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if racing and when.startswith("after"):
            made.append(leaf / "raced")
            made[0].mkdir()
        return result

    watch, why = _watch.try_watch(str(tree))
    assert watch is not None, why
    try:
        start = watch.generation
        with monkeypatch.context() as patched:
            patched.setattr(_watch.os, "stat", stat)
            watch.rewatch()
        assert made, "the race was not staged"
        if when.startswith("before"):
            assert str(made[0]) in watch._wds.values(), "the raced directory was not watched"
            start = watch.generation
            (made[0] / "later.txt").write_text("written after the watch was set up")
        assert watch.generation != start, "a change in the raced directory went unseen"
    finally:
        watch.close()


def test_link_counts_are_not_trusted_on_other_filesystems(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = _dirs(tree)
    listed = _spy_scandir(monkeypatch, tree)
    watch = _watch.ContextWatch(str(tree), fs_type="btrfs")  # btrfs counts every directory as 1
    try:
        watch.rewatch()
        monkeypatch.undo()
        assert len(listed) == len(dirs), "a directory was not listed"
        assert set(watch._wds.values()) == dirs
    finally:
        watch.close()


def test_a_mount_point_is_listed_whatever_its_link_count(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another filesystem mounted inside the context may count links its own way: a
    directory on another device is listed even with a count of 2."""
    mount = tree / "src"
    real_stat = os.stat

    def stat(path: str, *args: object, **kwargs: object) -> object:
        result = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if os.path.abspath(path) != str(mount):
            return result
        fields = list(result)
        fields[3] = 2  # st_nlink: "no subdirectories", as a filesystem might claim
        fields[2] = result.st_dev + 1  # st_dev: another filesystem
        return os.stat_result(fields)

    monkeypatch.setattr(_watch.os, "stat", stat)
    watch, why = _watch.try_watch(str(tree))
    assert watch is not None, why
    try:
        watch.rewatch()
        assert str(mount / "pkg") in watch._wds.values(), "the mount point's subdirectory was not watched"
    finally:
        watch.close()
