"""rtbuild context on a context holding a path over the system's 4,096 bytes: a short
message naming the root and the path's end, and a hint to shorten or exclude it. It
printed the whole 4 KiB path with the hint to make it readable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rtbuild._observe.context import inspect_context
from rtbuild.errors import BuildContextError


def _deep(ctx: Path, levels: int = 18) -> None:
    fd = os.open(ctx, os.O_RDONLY)
    try:
        for _ in range(levels):  # 18 x 251 bytes: past PATH_MAX, made one level at a time
            os.mkdir("d" * 250, dir_fd=fd)
            below = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = below
        os.close(os.open("file", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def test_a_path_over_the_limit_is_named_by_its_root_and_end(context: Path) -> None:
    _deep(context)
    with pytest.raises(BuildContextError) as caught:
        inspect_context(str(context), [])
    error = caught.value
    assert len(error.message) < 400 and str(context) in error.message
    assert error.hint is not None and "longer than the system allows" in error.hint
    assert error.exit_code == 2
