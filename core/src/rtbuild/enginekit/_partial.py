"""The no-op skip for a request whose tags are only partly current, for every backend.

``-t app:1 -t app:2`` after a build of ``app:1`` alone (or with ``app:2`` naming an image of
older inputs): ``app:1`` carries the inputs' digest, so the image a build would make is the
one it names; the backend points the other tags at it instead of building again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtbuild.enginekit._inputs import carries_digest


def partly_current(
    answers: Mapping[str, dict[str, Any] | None], digest: str
) -> tuple[dict[str, Any], list[str]] | None:
    """``answers`` (each tag's inspect answer, ``None`` when absent): (the answer of the
    first tag that carries ``digest``, the tags that name another image or none), or
    ``None`` when no tag carries it (a build is needed)."""
    current = next((info for info in answers.values() if info and carries_digest(info, digest)), None)
    if current is None:
        return None
    image_id = current.get("Id")
    return current, [tag for tag, info in answers.items() if (info or {}).get("Id") != image_id]


__all__ = ["partly_current"]
