"""``rtbuild prune`` on a Docker engine: list, decide with the shared policy, remove.

Images are listed with ``GET /images/json``, containers (running or not) with
``GET /containers/json?all=1``; the labelled candidates are inspected for their exact
creation time (the list has whole seconds only, and three builds can share one). Removal
is ``DELETE /images/TAG`` per tag whose image stays, ``/images/ID`` for an image that goes
(with its last tag) and a dangling one, never with ``force``: the engine itself refuses an
image a container uses, a second guard behind the policy's. See :meth:`DockerPruner.remove`
for builds of the same tags running during the prune. Old build logs in a
configured ``log_dir`` go too, and so does the input-digest record kept beside each deleted
image (:func:`rtbuild.enginekit.forget_digests`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

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

from .engine import EngineAPI

#: Build logs in a configured log_dir older than this go (``--older-than`` overrides).
LOG_MAX_AGE_S = 14 * 86400.0


def _created(value: Any, fallback: float) -> float:
    """RFC 3339 with nanoseconds (``2026-11-30T12:00:01.123456789Z``) -> epoch float."""
    if not isinstance(value, str):
        return fallback
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python parses at most microseconds
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return fallback


def _made(info: Mapping[str, Any], fallback: float) -> float:
    """When the image was last made: created, or tagged since (a build that reproduces an
    earlier image, every step cached, tags it anew but keeps its ``Created``: by that alone
    the image just built ranked behind an older one and was pruned by --keep 1)."""
    created = _created(info.get("Created"), fallback)
    metadata = info.get("Metadata")
    tagged = metadata.get("LastTagTime") if isinstance(metadata, Mapping) else None
    return max(created, _created(tagged, created))


def _tags(entry: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(tag for tag in entry.get("RepoTags") or () if tag and tag != "<none>:<none>")


class DockerPruner:
    def __init__(self, api: EngineAPI) -> None:
        self.api = api

    def _json(self, path: str) -> Any:
        status, data = self.api.call("GET", path)
        if status != 200:
            message = data.get("message") if isinstance(data, dict) else data
            raise EngineUnavailableError(
                f"the Docker engine at {self.api.host} answered {status} to GET {path}: {message}",
                step="prune",
                hint="check the engine's log (journalctl -u docker); run `rtbuild prune` again once it answers",
            )
        return data

    def shared_sizes(self) -> dict[str, int]:
        """Image ID -> bytes it shares with other images (``GET /system/df``); {} if unknown."""
        try:
            status, data = self.api.call("GET", "/system/df?type=image")
        except EngineUnavailableError:
            return {}
        if status != 200 or not isinstance(data, dict):
            return {}
        out: dict[str, int] = {}
        for entry in data.get("Images") or []:
            shared = entry.get("SharedSize") if isinstance(entry, dict) else None
            if isinstance(shared, int) and shared >= 0:
                out[str(entry.get("Id"))] = shared
        return out

    def images(self, repositories: tuple[str, ...] = ()) -> list[PruneImage]:
        """The labelled images (of ``repositories`` when given), with their exact age."""
        containers = self._json("/containers/json?all=1") or []
        in_use = {str(c.get("ImageID")) for c in containers if isinstance(c, dict)}
        out: list[PruneImage] = []
        listed = [e for e in self._json("/images/json") or [] if isinstance(e, dict)]
        # never even inspected: an image rtbuild did not label is not a candidate at all
        labelled = [e for e in listed if is_rtbuild_image(e.get("Labels"))]
        # every labelled image is inspected: a --repo image may derive from one outside it
        infos = {str(entry.get("Id")): self.api.inspect_image(str(entry.get("Id"))) or {} for entry in labelled}
        inherited = inherited_labels(infos)
        if repositories:
            labelled = [e for e in labelled if any(repository(t) in repositories for t in _tags(e))]
        shared = self.shared_sizes() if labelled else {}
        for entry in labelled:
            image_id = str(entry.get("Id"))
            if image_id in inherited:
                continue
            info = infos[image_id]
            size = entry.get("Size")
            if isinstance(size, int) and image_id in shared:
                size -= shared[image_id]  # what removing it frees: the layers no other image has
            out.append(
                PruneImage(
                    id=image_id,
                    tags=_tags(entry),
                    created=_made(info, float(entry.get("Created") or 0)),
                    size=size if isinstance(size, int) else 0,
                    labels=dict(entry.get("Labels") or {}),
                    in_use=image_id in in_use,
                )
            )
        return out

    def remove(self, item: PruneItem, *, dry_run: bool = False) -> None:
        """Remove what ``item`` selected, and only that: a tag may name another image by now
        (a build of it finished since the listing, or runs on another host). With ``dry_run``,
        only what a real run would keep is said (:func:`rtbuild.enginekit.remove_unless_building`).

        A tag whose build is running here (its build lock is held) is kept; the lock is held
        while its image goes, so a build that starts meanwhile waits, then finds it gone.
        An image is deleted by its ID, never by its tag: the engine refuses (409) an ID that
        gained a tag, and a tag rebuilt since the listing stays on its new image (the old
        image, left without tags, is what goes). A lone tag to untag, or a dangling image,
        is checked against the listing first and kept when it changed.
        """
        remove_unless_building(item, self._remove, dry_run=dry_run)

    def _remove(self, item: PruneItem) -> None:
        changed = self._changed(item)
        if changed:
            item.reason = f"{item.reason}; kept: {changed}"
            item.size = 0
            return
        target = item.name if item.kind == "tag" or not item.id else item.id
        status, data = self.api.call("DELETE", f"/images/{quote(target, safe='/:@')}")
        if status == 404:
            item.removed, item.size = True, 0  # already gone
        elif status == 200:
            item.removed = True
            # The engine lists what went ("Deleted": image and layer IDs): an image's input
            # digest record goes with it (layer IDs have none, forgetting them is a no-op).
            for entry in data if isinstance(data, list) else ():
                deleted = entry.get("Deleted") if isinstance(entry, dict) else None
                if isinstance(deleted, str):
                    forget_digests(deleted)
        elif status == 409 and item.kind == "image" and item.id and self._retagged(item):
            item.reason = f"{item.reason}; kept: the image has another tag now (tagged during the prune)"
            item.size = 0
        elif status == 409 and item.kind == "image" and "child" in str(data):
            # A parent of images the classic builder made on it: the engine deletes no such
            # image, by ID or by tag. Its tag goes (as `docker rmi TAG` does); it stays.
            item.kind, item.size = "tag", 0
            item.reason = f"{item.reason}; untagged only: other local images are built on it"
            self._remove(item)
        else:
            message = data.get("message") if isinstance(data, dict) else data
            item.error = f"engine answered {status}: {message}"

    def _retagged(self, item: PruneItem) -> bool:
        info = self.api.inspect_image(str(item.id)) or {}
        return bool(set(_tags({"RepoTags": info.get("RepoTags")})) - {item.name})

    def _changed(self, item: PruneItem) -> str | None:
        """Why ``item`` no longer holds since the listing, or None (an image goes by ID: the
        engine itself guards it)."""
        if item.kind == "tag" and item.id:
            info = self.api.inspect_image(item.name)
            if info is not None and info.get("Id") != item.id:
                return "the tag names another image now (built during the prune)"
        elif item.kind == "dangling" and item.id:
            info = self.api.inspect_image(item.id)
            if info is not None and _tags({"RepoTags": info.get("RepoTags")}):
                return "the image has a tag now (tagged during the prune)"
        return None


def familiar(repo: str) -> str:
    """A repository as Docker names its images: ``docker.io/library/app`` is ``app``,
    ``index.docker.io/team/app`` is ``team/app`` (``--repo`` in any spelling matches)."""
    from rtbuild.errors import InvalidReferenceError
    from rtbuild.oci import parse_reference

    try:
        return repository(parse_reference(repo).familiar)
    except InvalidReferenceError:
        return repo


def prune_images(api: EngineAPI, policy: PrunePolicy) -> list[PruneItem]:
    if policy.repositories:
        from dataclasses import replace

        policy = replace(policy, repositories=tuple(dict.fromkeys(familiar(r) for r in policy.repositories)))
    pruner = DockerPruner(api)
    images = pruner.images(policy.repositories)
    items = select_prunable(images, policy)
    for item in items:  # a dry run says what a real run would keep, as it would say it
        pruner.remove(item, dry_run=policy.dry_run)
    items += kept_in_use(images, policy)  # said, not silently left
    return items


def prune_logs(log_dir: str | None, policy: PrunePolicy) -> list[PruneItem]:
    """Old logs in a configured ``log_dir`` (the default one is the core's to prune); none
    under ``--repo``, which prunes images only."""
    if not log_dir or policy.repositories:
        return []
    from rtbuild.enginekit import default_log_dir

    if Path(log_dir).resolve() == Path(default_log_dir()).resolve():
        return []
    from rtbuild.enginekit import prune_log_dir

    max_age = policy.older_than_s if policy.older_than_s is not None else LOG_MAX_AGE_S
    # A running build's log (its flock, or open here) is listed as kept, never removed.
    return prune_log_dir(log_dir, policy, max_age, reason=f"older than {int(max_age // 86400)} days")


__all__ = ["DockerPruner", "familiar", "prune_images", "prune_logs"]
