"""The no-op skip for a request whose tags are only partly current.

``-t app:1 -t app:2`` after a build of ``app:1`` alone (or with ``app:2`` naming an image of
older inputs): ``app:1`` carries the inputs' digest, so the image a build would make is the
one it names; the other tags are pointed at it (one ``podman tag`` call) instead of running
``podman build`` again, as the Docker builder does (``rtbuild_docker.retag``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import Podman


def reuse_current(tags: Sequence[str], digest: str, podman: Podman) -> tuple[str, list[str]] | None:
    """(the ID of the image to reuse, the tags pointed at it now) when at least one of
    ``tags`` carries ``digest``; ``None`` when none does (a build is needed). The inspect
    answers are the ones :meth:`Podman.prefetch` cached for the check."""
    from rtbuild.enginekit import all_tags_current, partly_current

    image_id = all_tags_current(tags, digest, podman)
    if image_id is not None:
        return image_id, []
    found = partly_current({tag: podman.inspect_image(tag) for tag in tags}, digest)
    if found is None:
        return None
    current, moved = found
    image_id = str(current.get("Id", ""))
    if moved:
        podman.tag(image_id, *moved)  # forgets the cached answers: the store changed
    return image_id, moved


__all__ = ["reuse_current"]
