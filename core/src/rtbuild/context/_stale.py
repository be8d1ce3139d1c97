"""Contexts whose next engine build must send every file (BuildKit's sync would miss a change).

The docker client sends a context to BuildKit incrementally: a file whose size, mode and
mtime equal those of the copy BuildKit kept is not sent again, so a same-size rewrite with
its mtime set back (``cp -p``, ``tar x``, ``rsync -a``) would leave the old bytes in the
image. rtbuild's walk sees such rewrites (:attr:`ContextHash.stat_invisible`) only once:
the walk that sees them stores the new stat keys. So whichever walk sees them, on behalf
of any command or backend, leaves a marker per context here, and a backend whose engine
syncs incrementally (Docker) sends the whole context on its next build and then clears it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path


def stale_sync_marker(context: str) -> Path:
    """Where the marker of ``context`` lives (under the cache dir)."""
    import xxhash

    from rtbuild._framework.paths import cache_dir

    name = xxhash.xxh3_64_hexdigest(os.path.abspath(context).encode("utf-8", "surrogateescape"))
    return cache_dir("stale-sync", name)


def mark_stale_sync(context: str, files: Sequence[str]) -> None:
    """Remember that ``context`` changed in a way an incremental sync may not see."""
    path = stale_sync_marker(context)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(files[:100]) + "\n", encoding="utf-8", errors="surrogateescape")


def clear_stale_sync(context: str) -> None:
    """Forget the marker (a build that sent every file succeeded)."""
    with contextlib.suppress(OSError):
        stale_sync_marker(context).unlink()


def rewritten_unseen(context: str, path: str, digest: str) -> bool:
    """Whether ``path`` (the Dockerfile or ``.dockerignore``, hashed whole on every walk, so
    not in the stat cache when ``.dockerignore`` leaves it out or it lives elsewhere) now holds
    other bytes than when this was last asked, with the same size, mode and mtime: BuildKit
    syncs it incrementally too, and kept the old text (reproduced: a Dockerfile rewritten
    with ``touch -d`` built from its old RUN). Remembers the answer's stat and digest."""
    import xxhash

    from rtbuild._framework.atomic import read_file, try_atomic_write
    from rtbuild._framework.paths import cache_dir

    try:
        st = os.stat(path)
    except OSError:
        return False
    key = f"{os.path.abspath(context)}\0{os.path.realpath(path)}".encode("utf-8", "surrogateescape")
    record = cache_dir("side-files", xxhash.xxh3_64_hexdigest(key))
    now = f"{st.st_size} {st.st_mode} {st.st_mtime_ns} {digest}\n"
    try:
        before = read_file(str(record)).decode("ascii")
    except (OSError, UnicodeDecodeError):
        before = ""
    if before != now:
        with contextlib.suppress(OSError):
            record.parent.mkdir(parents=True, exist_ok=True)
            try_atomic_write(str(record), now.encode("ascii"))
    old = before.split()
    return len(old) == 4 and old[:3] == now.split()[:3] and old[3] != digest


__all__ = ["clear_stale_sync", "mark_stale_sync", "rewritten_unseen", "stale_sync_marker"]
