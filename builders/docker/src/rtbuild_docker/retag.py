"""The no-op skip for a request whose tags are only partly current.

``-t app:1 -t app:2`` after a build of ``app:1`` alone: ``app:1`` carries the inputs' digest,
so the image a build would make is the one it names; the other tags are pointed at it (one
engine call each) instead of building again, which on an engine that gives every build a
new image ID (Docker 20.10) also changed ``app:1``'s ID and pushed it anew.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from .engine import EngineAPI


def _answer(api: EngineAPI, tag: str) -> dict[str, Any] | None:
    # all_tags_current used up the prefetched answers up to the first tag that failed
    return api.answered[tag] if tag in api.answered else api.inspect_image(tag)


def _repo_and_tag(reference: str) -> tuple[str, str]:
    name, sep, tag = reference.rpartition(":")
    return (name, tag) if sep and "/" not in tag else (reference, "latest")


def reuse_current(tags: Sequence[str], digest: str, api: EngineAPI) -> tuple[dict[str, Any], list[str]] | None:
    """(the inspect answer of the image to reuse, the tags pointed at it now) when at least
    one of ``tags`` carries ``digest``; ``None`` when none does (a build is needed)."""
    from rtbuild.enginekit import all_tags_current, partly_current

    if all_tags_current(tags, digest, api) is not None:
        return _answer(api, tags[0]) or {}, []
    found = partly_current({tag: _answer(api, tag) for tag in tags}, digest)
    if found is None:
        return None
    current, moved = found
    image_id = str(current.get("Id", ""))
    from .engine import answer_error

    for tag in moved:
        repo, name = _repo_and_tag(tag)
        status, data = api.call("POST", f"/images/{quote(image_id)}/tag?repo={quote(repo, safe='')}&tag={quote(name)}")
        if status != 201:
            raise answer_error(api.host, status, data, f"tag {tag}")
    return current, moved


__all__ = ["reuse_current"]
