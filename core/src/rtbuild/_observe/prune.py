"""Which images ``rtbuild prune`` removes: the policy, shared by every backend.

A backend lists its local images as :class:`PruneImage` (with ``in_use`` from its
containers), calls :func:`select_prunable`, and removes what comes back unless the policy
is a dry run. The rules, in order:

- only images rtbuild labelled (a label key starting ``org.rtbuild.``) are ever candidates;
- an image a container uses (running or stopped) is never removed;
- a labelled image without tags (an earlier build of a tag that was rebuilt) goes;
- tagged images are ranked per repository, newest first: with ``keep`` the first N stay,
  with ``older_than_s`` only images older than that go; with neither, tagged images stay.
An image tagged in several repositories loses only the tags the rules select; it is
deleted (and its bytes freed) only when all its tags go.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

LABEL_PREFIX = "org.rtbuild."


@dataclass(frozen=True)
class PrunePolicy:
    """What to remove. ``repositories`` limits images to those repositories (and then
    leaves dangling images alone: they have no repository to match)."""

    keep: int | None = None
    older_than_s: float | None = None
    dry_run: bool = False
    repositories: tuple[str, ...] = ()
    now: float = field(default_factory=time.time)


@dataclass(frozen=True)
class PruneImage:
    """One local image as a backend sees it."""

    id: str
    tags: tuple[str, ...]
    created: float  # epoch seconds, sub-second when the engine knows it
    size: int
    labels: Mapping[str, str]
    in_use: bool = False


@dataclass
class PruneItem:
    """One thing removed (or, with a dry run, that would be)."""

    kind: str  # "image" | "tag" | "dangling" | "stat-cache" | "log" | "lock"
    name: str  # a tag, an image ID or a path
    size: int  # bytes freed (0 for a tag whose image stays)
    reason: str
    id: str | None = None
    removed: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_rtbuild_image(labels: Mapping[str, str] | None) -> bool:
    return any(key.startswith(LABEL_PREFIX) for key in labels or {})


def repository(tag: str) -> str:
    name = tag.split("@", 1)[0]
    return name[: name.rfind(":")] if name.rfind(":") > name.rfind("/") else name


def _age(seconds: float) -> str:
    from rtbuild._observe.units import human_duration

    return human_duration(max(0.0, seconds))


def select_prunable(images: Iterable[PruneImage], policy: PrunePolicy) -> list[PruneItem]:
    """The removals ``policy`` asks for, in the order to perform them."""
    labelled = [image for image in images if is_rtbuild_image(image.labels)]
    old_enough = policy.older_than_s
    out: list[PruneItem] = []
    # Dangling: no tag left, so nothing refers to it by name.
    if not policy.repositories:
        for image in sorted(labelled, key=lambda i: i.created):
            if image.tags or image.in_use:
                continue
            if old_enough is not None and policy.now - image.created < old_enough:
                continue
            reason = "dangling: an earlier build of a rebuilt tag"
            out.append(PruneItem("dangling", image.id, image.size, reason, id=image.id))
    if policy.keep is None and old_enough is None:
        return out
    by_repo: dict[str, list[tuple[PruneImage, str]]] = {}
    for image in labelled:
        for tag in image.tags:
            repo = repository(tag)
            if not policy.repositories or repo in policy.repositories:
                by_repo.setdefault(repo, []).append((image, tag))
    going: dict[str, list[tuple[str, str]]] = {}  # image id -> [(tag, reason)]
    for _repo, entries in sorted(by_repo.items()):
        ranked = sorted({image.id: image for image, _ in entries}.values(), key=lambda i: (-i.created, i.id))
        rank = {image.id: index for index, image in enumerate(ranked)}
        for image, tag in entries:
            if image.in_use:
                continue
            position = rank[image.id]
            if policy.keep is not None and position < policy.keep:
                continue
            age = policy.now - image.created
            if old_enough is not None and age < old_enough:
                continue
            why = [f"#{position + 1} newest in its repository" if policy.keep is not None else "", f"{_age(age)} old"]
            going.setdefault(image.id, []).append((tag, ", ".join(w for w in why if w)))
    for image in sorted(labelled, key=lambda i: i.created):
        tags = going.get(image.id)
        if not tags:
            continue
        whole = len(tags) == len(image.tags)
        for index, (tag, reason) in enumerate(sorted(tags)):
            last = whole and index == len(tags) - 1
            kind = "image" if last else "tag"
            out.append(PruneItem(kind, tag, image.size if last else 0, reason, id=image.id))
    return out


def kept_in_use(images: Sequence[PruneImage], policy: PrunePolicy) -> list[PruneItem]:
    """What ``policy`` would remove but a container uses (running or stopped), as items a
    backend adds to its report: ``removed`` false, no error, ``kept: ...`` in the reason.
    Left out, `prune --keep 0` kept such an image without a word."""
    used = {image.id for image in images if image.in_use}
    if not used:
        return []
    return [
        PruneItem(item.kind, item.name, 0, f"{item.reason}; kept: a container uses it", id=item.id)
        for item in select_prunable([_unused(image) for image in images], policy)
        if item.id in used
    ]


def _unused(image: PruneImage) -> PruneImage:
    return PruneImage(image.id, image.tags, image.created, image.size, image.labels, in_use=False)


__all__ = [
    "LABEL_PREFIX",
    "PruneImage",
    "PruneItem",
    "PrunePolicy",
    "is_rtbuild_image",
    "kept_in_use",
    "repository",
    "select_prunable",
]
