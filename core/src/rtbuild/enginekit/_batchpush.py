"""build-many: a multi-platform tag the batch pushed already (the same images) is not pushed again.

Several entries of a batch may give one tag (they build the same thing). A single-platform
entry's push runs in the core, which pushes such a tag once (``rtbuild._framework.pushonce``);
a multi-platform one pushes inside its builder, each ``TAG-os-arch`` image and then the index.
These helpers let :func:`build_each_platform`, :func:`indexes_current` and
:func:`assemble_indexes` skip a requested tag the batch already pushed with every platform's
image the same (keyed on all their image IDs), and report the index digest it pushed.
Never stale: another image for any platform (the context edited during the batch) pushes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _key(per_platform: Mapping[str, Mapping[str, Any]]) -> str | None:
    from rtbuild._framework.pushonce import platforms_key

    return platforms_key({platform: entry.get("image_id") for platform, entry in per_platform.items()})


def pushed_by_batch(
    tags: Iterable[str], per_platform: Mapping[str, Mapping[str, Any]], *, report: bool = True
) -> dict[str, str]:
    """``{tag: index digest}`` for those of ``tags`` this batch pushed already with these
    platform images (outside a batch: none). ``report``: a ``push_skipped`` event for each."""
    from rtbuild._framework.progress import get_reporter
    from rtbuild._framework.pushonce import is_shared, pushed_digest

    key = _key(per_platform)
    found: dict[str, str] = {}
    for tag in tags:
        digest = pushed_digest(tag, key) if key is not None and is_shared(tag) else None
        if digest is None:
            continue
        found[tag] = digest
        if report:
            get_reporter().event(
                "push_skipped",
                image=tag,
                digest=digest,
                message=f"{tag}: pushed already by this batch (same image for {', '.join(per_platform)})",
            )
    return found


def record_indexes(digests: Mapping[str, str], per_platform: Mapping[str, Mapping[str, Any]]) -> None:
    """The registry now holds, under each tag of ``digests``, the index of these platform images."""
    from rtbuild._framework.pushonce import is_shared, record_push

    key = _key(per_platform)
    for tag, digest in digests.items():
        if is_shared(tag):
            record_push(tag, key, digest)


def pushed_in_batch(tags: Sequence[str], key: str | None) -> dict[str, str] | None:
    """For a builder that pushes from inside its build (the Kubernetes one): when this
    build-many batch already pushed every one of ``tags`` as ``key`` (what identifies the
    image: its input digest and platforms, say), ``{tag: the digest recorded, or ''}`` after
    a ``push_skipped`` event for each; else ``None`` (outside a batch, a tag no other entry
    gives, another key: build or check as usual)."""
    from rtbuild._framework.progress import get_reporter
    from rtbuild._framework.pushonce import is_shared, pushed_already, pushed_digest

    if key is None or not tags or not all(is_shared(tag) and pushed_already(tag, key) for tag in tags):
        return None
    for tag in tags:
        get_reporter().event("push_skipped", image=tag, message=f"{tag}: pushed already by this batch (same inputs)")
    return {tag: pushed_digest(tag, key) or "" for tag in tags}


def record_batch_push(tags: Sequence[str], key: str | None, digest: str | None = None) -> None:
    """The registry holds ``tags`` as ``key`` now (pushed, or read and found current)."""
    from rtbuild._framework.pushonce import is_shared, record_push

    for tag in tags:
        if key is not None and is_shared(tag):
            record_push(tag, key, digest)


__all__ = ["pushed_by_batch", "pushed_in_batch", "record_batch_push", "record_indexes"]
