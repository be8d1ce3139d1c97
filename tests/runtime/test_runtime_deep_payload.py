"""A payload nested deeper than Python's recursion limit is staged, pruned and cleaned up.

Staging removed what a payload no longer had with ``os.walk`` and ``shutil.rmtree``,
which recurse once per directory level on Python 3.11: a tree about 1,000 levels deep
ended ``rtbuild runtime`` in ``internal error: RecursionError`` (the hashing before it
coped), and so did the clean-up of a stale staging directory holding one, on every
later request.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import STAGE_MAX_AGE_S, build_runtime_image
from rtbuild.runtime._tree import remove_tree
from rtbuild.testing import FakeBuilder

DEPTH = sys.getrecursionlimit() + 200


def _nest(top: Path, depth: int) -> Path:
    """``top/d/d/.../d`` (``depth`` levels) made one level at a time (``os.makedirs`` recurses)."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as handle:
            handle.write("bottom\n")
    finally:
        os.close(fd)
    return top.joinpath(*["d"] * depth, "bottom.txt")


@pytest.fixture
def deep_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    yield tmp_path
    # pytest's own clean-up of old temporary directories would hit the recursion limit too.
    for child in tmp_path.iterdir():
        remove_tree(str(child))


def _build(payload: Path) -> tuple[str, str]:
    config = Config(load_plugins=[])
    config.runtime.repo = "rt/deep"
    builder = FakeBuilder()
    result = build_runtime_image(
        config,
        "busybox:latest",
        [],
        payloads=[SourcePayload.directory(payload, "/opt/deep")],
        pm=get_plugin_manager(config, load_entrypoints=False),
        builder=builder,
    )
    return result.image, [c for c in builder.calls if c["method"] == "build"][-1]["path"]


def test_a_payload_deeper_than_the_recursion_limit_is_staged_and_pruned(deep_tmp: Path) -> None:
    payload = deep_tmp / "agent"
    bottom = _nest(payload, DEPTH)
    first, context = _build(payload)
    staged = Path(context, "src/extra-source/payload-0", bottom.relative_to(payload))
    assert staged.read_text() == "bottom\n"

    # The deep part leaves the payload: staging removes it (and the tag changes).
    os.rename(payload / "d" / "d", deep_tmp / "moved-out")
    (payload / "d" / "top.txt").write_text("top\n")
    second, context = _build(payload)
    assert second != first
    assert sorted(p.name for p in Path(context, "src/extra-source/payload-0/d").iterdir()) == ["top.txt"]


def test_a_stale_staging_directory_of_any_depth_is_removed(deep_tmp: Path) -> None:
    stale = deep_tmp / "xdg-cache" / "rtbuild" / "runtime" / "stage" / "0123456789abcdef"
    _nest(stale / "src", DEPTH)
    old = time.time() - STAGE_MAX_AGE_S - 60
    os.utime(stale, (old, old))
    small = deep_tmp / "small"
    small.mkdir()
    (small / "a.txt").write_text("a\n")
    _build(small)
    assert not stale.exists()
