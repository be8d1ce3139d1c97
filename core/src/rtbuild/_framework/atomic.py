"""Atomic file writes: readers see the old file or the new one, never half of either.

Write to a temporary file in the same directory, then ``os.replace`` it over the target.
The temporary file is removed on every failure (a full disk must not leave ``*.tmp``
litter behind on each run).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from stat import S_ISREG


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically, creating its directory; raises ``OSError``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    import tempfile  # imported here: most CLI calls write nothing (tempfile pulls in shutil, random)

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_file(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The contents of the regular file ``path`` (at most ``limit`` bytes); raises ``OSError``
    for anything else. For rtbuild's own cache and state files: a FIFO found in a file's
    place is not waited on (an open blocks until a writer comes: every build hung), nor is a
    device read without end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        chunks: list[bytes] = []
        left = -1 if limit is None else limit
        while left:
            chunk = os.read(fd, 1 << 20 if left < 0 else min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left = left - len(chunk) if left > 0 else left
        return b"".join(chunks)
    finally:
        os.close(fd)


def try_atomic_write(path: str | os.PathLike[str], data: bytes | str) -> bool:
    """:func:`atomic_write` for caches: ``False`` instead of an error when it cannot write."""
    try:
        atomic_write(path, data)
    except OSError:
        return False
    return True


__all__ = ["atomic_write", "read_file", "try_atomic_write"]
