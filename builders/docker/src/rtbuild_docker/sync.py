"""When BuildKit's incremental context sync could keep a stale file, send the whole context.

The docker client sends a context to BuildKit incrementally: a file whose size, mode and
mtime equal those of the copy BuildKit kept from the last build is not sent again. A
same-size rewrite whose mtime was set back (``touch -d``, ``cp -p``, ``tar x``, ``rsync -a``)
therefore leaves the old contents in the image -- and the image would carry the new input
digest. rtbuild's own change detector sees such rewrites (ctime, inode, content hash); when
it does, the next engine build runs under a new build-node identity, kept for the builds
after it (:func:`rotate_build_node_id`), so BuildKit receives every file.

A marker file per context (:func:`rtbuild.context.mark_stale_sync`, left by whichever walk
saw the rewrite, for any command or backend) remembers the need until a build succeeded,
so a run that stops between hashing and building, or a `rtbuild context` in between,
does not lose it. A context
hashed without any stat cache (first run, or the cache was lost) while one of its tags
already carries an rtbuild digest gets the same treatment: nothing proves the engine's copy.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtbuild.context import stale_sync_marker
from rtbuild.enginekit import DIGEST_LABEL


def rotate_build_node_id() -> None:
    """Make the docker client (and buildx) use a new build node identity from now on.

    The client keys BuildKit's incremental context sync by a node ID kept in its config
    dir (``.buildNodeID``, made again when missing). Under a new ID BuildKit receives the
    whole context; and since every later build uses the new ID too, none of them is
    compared with the copy kept under the old one, which still holds the bytes the sync
    missed. (A one-off ID for the fresh build alone left that copy in use: the next build
    after any other edit brought the old bytes back.) The cost: each context the client
    builds next is sent whole once.
    """
    real = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    for path in (real / ".buildNodeID", real / "buildx" / ".buildNodeID"):
        with contextlib.suppress(OSError):
            path.unlink()


def needs_fresh_sync(context: str, hashed: Any, tags: Sequence[str], docker_host: str | None) -> bool:
    """Whether the next build of ``context`` must send every file (see the module doc)."""
    if stale_sync_marker(context).exists():
        return True
    if hashed is None or not getattr(hashed, "cold", False):
        return False
    from .engine import EngineAPI

    api = EngineAPI(docker_host)
    for tag in tags:
        info = api.inspect_image(tag)
        labels = ((info or {}).get("Config") or {}).get("Labels") or {}
        if DIGEST_LABEL in labels:
            return True
    return False


__all__ = ["needs_fresh_sync", "rotate_build_node_id"]
