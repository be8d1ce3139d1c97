"""build-many: a tag that several entries share (they build the same thing) is pushed once.

Each entry pushed every tag it has, so entries sharing ``app:1`` with ``push = true`` pushed
the same image once each. The batch keeps what it pushed (the tag as the engine reads it,
and the builder's image ID it pushed): a later entry whose tag still names that image does
not push it again. Never stale: an image that changed in between (another ID) is pushed, and
so is every tag of a builder that reports no image ID (:meth:`RuntimeBuilder.image_id`).
The build lock holds a tag from the no-op check to the push, so an entry sharing it asks
only once the other's push has ended. Only tags that several entries give are looked up
(a builder's ``image_id`` may ask a registry: the Kubernetes one does).

Multi-platform requests (pushed inside the builder, through :mod:`rtbuild.enginekit`) key
a tag on every platform's image ID together (:func:`platforms_key`) and keep the digest of
the index pushed under it, so a later entry skips that tag's ``TAG-os-arch`` pushes and its
index, and reports the index digest the batch pushed.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from rtbuild._framework.locks import normalize_tag

if TYPE_CHECKING:
    from rtbuild.builder import RuntimeBuilder


class _Ledger:
    def __init__(self, shared: set[str]) -> None:
        self.lock = threading.Lock()
        self.shared = shared
        self.pushed: dict[str, str] = {}
        self.digests: dict[str, str] = {}


_ledger: contextvars.ContextVar[_Ledger | None] = contextvars.ContextVar("rtbuild_pushed", default=None)


@contextlib.contextmanager
def push_ledger(tags: Iterable[Iterable[str]]) -> Iterator[None]:
    """Code run in this context (and copies of it: build-many's workers) pushes a tag that
    several of ``tags`` (each entry's) give once per image."""
    seen: set[str] = set()
    shared: set[str] = set()
    for entry_tags in tags:
        for tag in {normalize_tag(t) for t in entry_tags}:
            (shared if tag in seen else seen).add(tag)
    token = _ledger.set(_Ledger(shared))
    try:
        yield
    finally:
        _ledger.reset(token)


def image_to_push(tag: str, builder: RuntimeBuilder) -> str | None:
    """The image ID ``tag`` names now, for a tag several entries of a batch share (else
    ``None``: not recorded)."""
    ledger = _ledger.get()
    if ledger is None or normalize_tag(tag) not in ledger.shared:
        return None
    try:
        return builder.image_id(tag)
    except Exception:  # an engine that cannot tell: push as before
        return None


def pushed_already(tag: str, image_id: str | None) -> bool:
    """Whether this batch pushed ``image_id`` to ``tag`` (in any spelling) already."""
    ledger = _ledger.get()
    if ledger is None or image_id is None:
        return False
    with ledger.lock:
        return ledger.pushed.get(normalize_tag(tag)) == image_id


def record_push(tag: str, image_id: str | None, digest: str | None = None) -> None:
    """``tag`` now holds ``image_id`` in its registry (a push succeeded, or the registry was
    read and holds it); ``digest``: what the tag's manifest or index is there."""
    ledger = _ledger.get()
    if ledger is not None and image_id is not None:
        with ledger.lock:
            ledger.pushed[normalize_tag(tag)] = image_id
            if digest:
                ledger.digests[normalize_tag(tag)] = digest


def is_shared(tag: str) -> bool:
    """Whether several entries of the running batch give ``tag`` (only those are recorded)."""
    ledger = _ledger.get()
    return ledger is not None and normalize_tag(tag) in ledger.shared


def pushed_digest(tag: str, image_id: str | None) -> str | None:
    """The digest this batch recorded for ``tag`` when it pushed ``image_id`` there; else ``None``."""
    ledger = _ledger.get()
    if ledger is None or image_id is None:
        return None
    with ledger.lock:
        if ledger.pushed.get(normalize_tag(tag)) != image_id:
            return None
        return ledger.digests.get(normalize_tag(tag))


def platforms_key(images: dict[str, str | None]) -> str | None:
    """One key for a multi-platform push: every platform with its image ID (``None`` when
    one has none: such a request is never taken as pushed already)."""
    if not images or any(not image_id for image_id in images.values()):
        return None
    return "index:" + ";".join(f"{platform}={images[platform]}" for platform in sorted(images))


__all__ = [
    "image_to_push",
    "is_shared",
    "platforms_key",
    "push_ledger",
    "pushed_already",
    "pushed_digest",
    "record_push",
]
