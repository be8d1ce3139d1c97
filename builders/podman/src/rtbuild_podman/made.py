"""When rtbuild last built (and so tagged) an image on Podman, recorded beside it by ID.

Podman keeps no tag time (``podman image inspect`` has ``Created`` and ``NamesHistory``, no
``LastTagTime`` as Docker has). A build whose every step is cached reproduces an earlier
image, same ID and same ``Created``, under its new tag: ranked by ``Created`` alone,
``prune --keep 1`` removed the image the last build made and kept an older one. Each build
writes ``rtbuild.cache_dir("podman-made")/<id>`` (the time, epoch seconds); prune counts an
image's age from the later of ``Created`` and that time. At most :data:`MAX_RECORDS` are
kept, the oldest going first (a lost one only falls back to ``Created``).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

RECORD_DIR = "podman-made"
MAX_RECORDS = 4096
_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def _path(image_id: str | None) -> Path | None:
    from rtbuild import cache_dir

    match = _ID.match(image_id or "")
    return cache_dir(RECORD_DIR, match.group(1)) if match else None


def note_made(image_id: str | None, now: float | None = None) -> None:
    """Record that a build made (or reproduced and tagged) ``image_id`` now (best effort)."""
    from rtbuild import atomic_write

    path = _path(image_id)
    if path is None:
        return
    try:
        atomic_write(path, f"{time.time() if now is None else now:.6f}\n")
    except OSError:
        return
    if path.name.startswith("0"):  # about one build in 16 checks the bound
        _trim(path.parent)


def _trim(directory: Path) -> None:
    """Keep the newest :data:`MAX_RECORDS` records (an atomic write's temp file is no record)."""
    found: list[tuple[float, str]] = []
    with contextlib.suppress(OSError), os.scandir(directory) as scanner:
        for entry in scanner:
            if _ID.match(entry.name):
                with contextlib.suppress(OSError):
                    found.append((entry.stat().st_mtime, entry.path))
    for _mtime, old in sorted(found, reverse=True)[MAX_RECORDS:]:
        with contextlib.suppress(OSError):
            os.unlink(old)


def made_at(image_id: str) -> float | None:
    """When a build last made ``image_id``, if one recorded it."""
    path = _path(image_id)
    if path is None:
        return None
    try:
        # O_NONBLOCK: a FIFO put in its place is not waited on (it reads empty: no record).
        with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NONBLOCK)) as handle:
            return float(handle.read(64).decode("ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def forget_made(image_id: str) -> None:
    """Remove ``image_id``'s record (podman deleted that image)."""
    path = _path(image_id)
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


__all__ = ["MAX_RECORDS", "forget_made", "made_at", "note_made"]
