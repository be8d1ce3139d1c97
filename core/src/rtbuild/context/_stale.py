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


__all__ = ["clear_stale_sync", "mark_stale_sync", "stale_sync_marker"]
