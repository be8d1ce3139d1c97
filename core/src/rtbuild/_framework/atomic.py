"""Atomic file writes: readers see the old file or the new one, never half of either.

Write to a temporary file in the same directory, then ``os.replace`` it over the target.
The temporary file is removed on every failure (a full disk must not leave ``*.tmp``
litter behind on each run).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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


def try_atomic_write(path: str | os.PathLike[str], data: bytes | str) -> bool:
    """:func:`atomic_write` for caches: ``False`` instead of an error when it cannot write."""
    try:
        atomic_write(path, data)
    except OSError:
        return False
    return True


__all__ = ["atomic_write", "try_atomic_write"]
