"""A small tmpfs of a test's own (mounting needs root), filled to its last byte or inode
on request: a full disk or a full inode table that is real, and gone after the test."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest


def require_root() -> None:
    """Skip without root; under CI=true fail instead (a skipped fault test proves nothing)."""
    if os.geteuid() != 0:
        message = "mounting a small tmpfs needs root (make test runs as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)


@contextlib.contextmanager
def small_tmpfs(
    where: Path, size: str = "256k", *, inodes: int | None = None, dirs: Sequence[str] = (), full: bool = False
) -> Iterator[Path]:
    """A tmpfs of ``size`` (and ``inodes``) mounted at ``where``, with the directories
    ``dirs`` made in it; ``full``: then filled, every byte (or, with ``inodes``, every inode)."""
    require_root()
    where.mkdir()
    options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
    try:
        for name in dirs:
            (where / name).mkdir()
        if full and inodes:
            for index in range(inodes + 1):
                try:
                    (where / f"f{index}").touch()
                except OSError:
                    break  # ENOSPC: no inode left
        elif full:
            fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError:
                pass  # ENOSPC: full
            finally:
                os.close(fd)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
