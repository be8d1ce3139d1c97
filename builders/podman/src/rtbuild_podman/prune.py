"""``rtbuild prune`` on Podman: list, decide with the shared policy, remove.

``podman images --format json`` lists the images with their labels, sizes (``SharedSize``
too) and how many containers use each; ``podman ps -a`` double-checks the containers. The
labelled candidates are inspected for their exact creation time. Removal is ``podman rmi
TAG`` (the image goes with its last tag) or ``podman rmi ID`` for a dangling one, never
``--force``: podman itself refuses an image a container uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rtbuild import PruneItem, PrunePolicy
from rtbuild.enginekit import PruneImage, is_rtbuild_image, select_prunable
from rtbuild.enginekit import prune_repository as repository

from .engine import Podman, normalize_id

#: Podman stores an unqualified name as localhost/NAME; ``--repo NAME`` means that one.
_LOCAL = "localhost/"


def _created(value: Any, fallback: float) -> float:
    """RFC 3339 with nanoseconds -> epoch float (Python parses at most microseconds)."""
    if not isinstance(value, str):
        return fallback
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return fallback


def _json(podman: Podman, *args: str) -> list[dict[str, Any]]:
    proc = podman.run(*args, timeout=120)
    if proc.returncode != 0:
        raise podman._failed(" ".join(args[:2]), proc)
    data = json.loads(proc.stdout or "[]")
    return [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []


def _policy_repositories(policy: PrunePolicy) -> tuple[str, ...]:
    """``--repo app`` also names Podman's ``localhost/app``."""
    extra = tuple(_LOCAL + r for r in policy.repositories if not r.startswith(_LOCAL))
    return tuple(dict.fromkeys((*policy.repositories, *extra)))


def images(podman: Podman, repositories: tuple[str, ...] = ()) -> list[PruneImage]:
    used = {normalize_id(str(c.get("ImageID") or "")) for c in _json(podman, "ps", "-a", "--format", "json")}
    out: dict[str, PruneImage] = {}
    for entry in _json(podman, "images", "--format", "json"):
        labels: Mapping[str, str] = entry.get("Labels") or {}
        if not is_rtbuild_image(labels):
            continue  # never a candidate: rtbuild did not make it
        # Podman 4 names the tags "Names" ("RepoTags" in later versions and Docker).
        names = entry.get("RepoTags") or entry.get("Names") or ()
        tags = tuple(dict.fromkeys(tag for tag in names if tag and not tag.startswith("<none>")))
        if repositories and not any(repository(tag) in repositories for tag in tags):
            continue
        image_id = normalize_id(str(entry.get("Id")))
        if image_id in out:
            continue  # podman lists an image once per manifest it belongs to
        info = podman.inspect_image(image_id) or {}
        raw_size = entry.get("Size")
        size = raw_size if isinstance(raw_size, int) else 0
        shared = entry.get("SharedSize")
        if isinstance(shared, int) and 0 <= shared <= size:
            size -= shared  # what removing it frees: the layers no other image has
        out[image_id] = PruneImage(
            id=image_id,
            tags=tags,
            created=_created(info.get("Created"), float(entry.get("Created") or 0)),
            size=size,
            labels=dict(labels),
            in_use=bool(entry.get("Containers")) or image_id in used,
        )
    return list(out.values())


def prune_images(podman: Podman, policy: PrunePolicy) -> list[PruneItem]:
    from dataclasses import replace

    policy = replace(policy, repositories=_policy_repositories(policy)) if policy.repositories else policy
    items = select_prunable(images(podman, policy.repositories), policy)
    if policy.dry_run:
        return items
    for item in items:
        target = item.id if item.kind == "dangling" and item.id else item.name
        proc = podman.run("rmi", target, timeout=120)
        if proc.returncode == 0:
            item.removed = True
        else:
            lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            item.error = lines[-1] if lines else f"podman rmi exited {proc.returncode}"
    podman.forget()
    return items


__all__ = ["images", "prune_images"]
