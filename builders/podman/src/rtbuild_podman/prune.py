"""``rtbuild prune`` on Podman: list, decide with the shared policy, remove.

``podman images --format json`` lists the images with their labels, sizes (``SharedSize``
too) and how many containers use each; ``podman ps -a`` double-checks the containers. The
labelled images are inspected for their exact creation time and their layers (an image
someone built ``FROM`` an rtbuild image with a plain ``podman build`` inherits its labels
and is left alone: :func:`rtbuild.enginekit.inherited_labels`). Removal never uses ``--force`` (podman itself
refuses an image a container uses): a tag whose image stays goes with ``podman untag ID
TAG``, an image that goes and a dangling one with ``podman rmi ID``, never by tag. See
:meth:`PodmanPruner.remove` for builds of the same tags running during the prune.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import datetime
from typing import Any

from rtbuild import PruneItem, PrunePolicy
from rtbuild.enginekit import (
    PruneImage,
    forget_digests,
    inherited_labels,
    is_rtbuild_image,
    kept_in_use,
    remove_unless_building,
    select_prunable,
)
from rtbuild.enginekit import prune_repository as repository
from rtbuild.errors import EngineUnavailableError

from .engine import Podman, normalize_id
from .made import forget_made

#: Podman stores an unqualified name as localhost/NAME; ``--repo NAME`` means that one.
_LOCAL = "localhost/"
#: ``podman images`` and ``podman image inspect`` fail when another podman process removes or
#: writes an image while they read the store ("checking if image ... is dangling: ... image
#: not known", "locating item named "manifest" ...: file does not exist"; containers/podman
#: #12582): a concurrent prune, build or ``podman rmi``. Such an answer is asked again.
_RACES = ("image not known", "file does not exist", "layer not known")
_ATTEMPTS = 5


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


def _made(image_id: str, info: dict[str, Any], fallback: float) -> float:
    """When the image was last made: created, or built again since by rtbuild (a build that
    reproduces an earlier image, every step cached, tags it anew but keeps its ``Created``,
    and podman records no tag time: see :mod:`.made`)."""
    from .made import made_at

    created = _created(info.get("Created"), fallback)
    return max(created, made_at(image_id) or created)


def _raced(text: str) -> bool:
    return any(marker in text for marker in _RACES)


def _json(podman: Podman, *args: str) -> list[dict[str, Any]]:
    for attempt in range(1, _ATTEMPTS + 1):
        proc = podman.run(*args, timeout=120)
        if proc.returncode == 0 or attempt == _ATTEMPTS or not _raced(proc.stderr or ""):
            break
        time.sleep(0.1 * attempt)  # an image went (or came) while podman read the store
    if proc.returncode != 0:
        raise podman._failed(" ".join(args[:2]), proc)
    data = json.loads(proc.stdout or "[]")
    return [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []


def _policy_repositories(policy: PrunePolicy) -> tuple[str, ...]:
    """``--repo app`` also names Podman's ``localhost/app``; a name with a registry also
    names its canonical spelling, as podman stores it (``docker.io/app`` and
    ``index.docker.io/library/app`` are ``docker.io/library/app``)."""
    from rtbuild.errors import InvalidReferenceError
    from rtbuild.oci import parse_reference

    extra: list[str] = []
    for name in policy.repositories:
        first = name.split("/", 1)[0]
        if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
            extra.append(_LOCAL + name)  # no registry: podman's build -t NAME
            continue
        try:
            ref = parse_reference(name)
        except InvalidReferenceError:
            continue
        extra.append(f"{ref.registry}/{ref.repository}")
    return tuple(dict.fromkeys((*policy.repositories, *extra)))


def _tags(names: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tag for tag in names or () if tag and not str(tag).startswith("<none>")))


def _lock_names(tag: str) -> tuple[str, ...]:
    """The names a build of ``tag`` may have locked: podman lists a build of ``app:1`` as
    ``localhost/app:1``, the name the build locked is ``app:1``."""
    return (tag, tag.removeprefix(_LOCAL)) if tag.startswith(_LOCAL) else (tag,)


def _last_line(proc: Any, what: str) -> str:
    lines = [line for line in (proc.stderr or proc.stdout or "").splitlines() if line.strip()]
    return lines[-1] if lines else f"podman {what} exited {proc.returncode}"


class PodmanPruner:
    def __init__(self, podman: Podman) -> None:
        self.podman = podman

    def _inspect(self, name: str) -> dict[str, Any] | None:
        """A fresh inspect answer (the store may have changed since the listing)."""
        for attempt in range(1, _ATTEMPTS + 1):
            self.podman.forget()
            try:
                return self.podman.inspect_image(name)
            except EngineUnavailableError as exc:
                if attempt == _ATTEMPTS or not _raced(str(exc)):
                    raise
                time.sleep(0.1 * attempt)
        return None  # not reached

    def _inspect_all(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The inspect documents of ``ids`` in one podman call (one by one if one went)."""
        if not ids:
            return {}
        proc = self.podman.run("image", "inspect", *ids, timeout=120)
        docs: Any = []
        if proc.returncode == 0:
            with contextlib.suppress(ValueError):
                docs = json.loads(proc.stdout or "[]")
        if isinstance(docs, list) and len(docs) == len(ids):
            return {image_id: doc if isinstance(doc, dict) else {} for image_id, doc in zip(ids, docs, strict=True)}
        found = {image_id: self._inspect(image_id) for image_id in ids}
        return {image_id: doc for image_id, doc in found.items() if doc is not None}

    def images(self, repositories: tuple[str, ...] = ()) -> list[PruneImage]:
        """The labelled images (of ``repositories`` when given), with their exact age."""
        used = {normalize_id(str(c.get("ImageID") or "")) for c in _json(self.podman, "ps", "-a", "--format", "json")}
        entries: dict[str, dict[str, Any]] = {}
        for entry in _json(self.podman, "images", "--format", "json"):
            if is_rtbuild_image(entry.get("Labels")):  # else never a candidate: rtbuild did not make it
                # podman lists an image once per manifest it belongs to
                entries.setdefault(normalize_id(str(entry.get("Id"))), entry)
        # every labelled image is inspected: a --repo image may derive from one outside it
        infos = self._inspect_all(list(entries))
        inherited = inherited_labels(infos)
        out: list[PruneImage] = []
        for image_id, entry in entries.items():
            if image_id not in infos:
                continue  # removed since the listing
            # Podman 4 names the tags "Names" ("RepoTags" in later versions and Docker).
            tags = _tags(entry.get("RepoTags") or entry.get("Names"))
            if image_id in inherited or (repositories and not any(repository(t) in repositories for t in tags)):
                continue
            raw_size = entry.get("Size")
            size = raw_size if isinstance(raw_size, int) else 0
            shared = entry.get("SharedSize")
            if isinstance(shared, int) and 0 <= shared <= size:
                size -= shared  # what removing it frees: the layers no other image has
            out.append(
                PruneImage(
                    id=image_id,
                    tags=tags,
                    created=_made(image_id, infos[image_id], float(entry.get("Created") or 0)),
                    size=size,
                    labels=dict(entry.get("Labels") or {}),
                    in_use=bool(entry.get("Containers")) or image_id in used,
                )
            )
        return out

    def remove(self, item: PruneItem, *, dry_run: bool = False) -> None:
        """Remove what ``item`` selected, and only that: a tag may name another image by now
        (a build of it finished since the listing, or runs on another host). With ``dry_run``,
        only what a real run would keep is said (:func:`rtbuild.enginekit.remove_unless_building`).

        A tag whose build is running here (its build lock is held) is kept; the lock is held
        while its image goes, so a build that starts meanwhile waits, then finds it gone.
        An image is deleted by its ID, never by its tag, so a tag rebuilt since the listing
        stays on its new image (the old image, left without tags, is what goes); one that
        gained another tag is kept. A tag is untagged from the listed image only
        (``podman untag ID TAG`` fails when the tag names another one); a dangling image
        that gained a tag is kept.
        """
        remove_unless_building(item, self._remove, dry_run=dry_run, names=_lock_names)

    def _keep(self, item: PruneItem, why: str) -> None:
        item.reason, item.size = f"{item.reason}; kept: {why}", 0

    def _remove(self, item: PruneItem) -> None:
        image_id = item.id or item.name
        info = self._inspect(image_id)
        if info is None:
            item.removed, item.size = True, 0  # already gone
            return
        tags = set(_tags(info.get("RepoTags")))
        if item.kind == "tag":
            if item.name not in tags:
                self._keep(item, "the tag names another image now (built during the prune)")
                return
            proc = self.podman.run("untag", image_id, item.name, timeout=120)
        elif item.kind == "dangling" and tags:
            self._keep(item, "the image has a tag now (tagged during the prune)")
            return
        elif tags - {item.name}:
            self._keep(item, "the image has another tag now (tagged during the prune)")
            return
        else:
            proc = self.podman.run("rmi", image_id, timeout=120)
        if proc.returncode == 0:
            item.removed = True
            if item.kind != "tag":
                # A digest record beside the image (a withdrawn label: confirm_label) goes
                # with it; podman lists what went ("Deleted: ID"), layers have no record.
                forget_digests(image_id)
                forget_made(image_id)
                for line in proc.stdout.splitlines():
                    forget_digests(line.removeprefix("Deleted:").strip())
        elif self._inspect(image_id) is None:
            item.removed, item.size = True, 0  # another prune removed it first
        elif "more than one tag" in (proc.stderr or ""):  # it gained a tag since the check
            self._keep(item, "the image has another tag now (tagged during the prune)")
        elif item.kind == "tag" and "tag not known" in (proc.stderr or ""):
            self._keep(item, "the tag names another image now (built during the prune)")
        else:
            item.error = _last_line(proc, "untag" if item.kind == "tag" else "rmi")


def images(podman: Podman, repositories: tuple[str, ...] = ()) -> list[PruneImage]:
    """The labelled images (of ``repositories`` when given): :meth:`PodmanPruner.images`."""
    return PodmanPruner(podman).images(repositories)


def prune_images(podman: Podman, policy: PrunePolicy) -> list[PruneItem]:
    from dataclasses import replace

    policy = replace(policy, repositories=_policy_repositories(policy)) if policy.repositories else policy
    pruner = PodmanPruner(podman)
    images = pruner.images(policy.repositories)
    items = select_prunable(images, policy)
    for item in items:  # a dry run says what a real run would keep, as it would say it
        pruner.remove(item, dry_run=policy.dry_run)
    items += kept_in_use(images, policy)  # said, not silently left
    podman.forget()
    return items


def prune_logs(log_dir: str | None, policy: PrunePolicy) -> list[PruneItem]:
    """Logs in a configured ``log_dir`` unmodified for ``--older-than`` (default 14 days);
    the default log directory is the core's to prune, and ``--repo`` prunes images only. A
    running build's log is kept."""
    from rtbuild.enginekit import default_log_dir, prune_log_dir

    if not log_dir or policy.repositories or os.path.realpath(log_dir) == os.path.realpath(default_log_dir()):
        return []
    max_age = policy.older_than_s if policy.older_than_s is not None else 14 * 86400.0
    return prune_log_dir(log_dir, policy, max_age, reason=f"older than {int(max_age // 86400)} days")


__all__ = ["PodmanPruner", "images", "prune_images", "prune_logs"]
