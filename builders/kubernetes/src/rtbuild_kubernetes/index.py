"""Several platforms: one Job each, then one index (manifest list) put under every tag,
with the core's index helpers (:func:`rtbuild.oci.describe`, :func:`rtbuild.oci.push_index`),
then the Jobs' temporary per-platform tags removed (:func:`remove_temporary_tags`), or, when
the build failed or was interrupted, those that were pushed (:func:`discard_temporary_tags`)."""

from __future__ import annotations

import contextvars
import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rtbuild import AgentRuntimeBuildError, ConfigError, get_reporter
from rtbuild.oci import RegistryClient, describe, parse_reference, push_index

if TYPE_CHECKING:
    import httpx

    from .registry_ops import RegistryOps

#: Names, in a placeholder index, the temporary tag it stood in for (one placeholder per tag).
PLACEHOLDER_ANNOTATION = "org.rtbuild.temporary-tag"


def assemble_index(tags: list[str], entries: list[tuple[str, str]], insecure_registries: Iterable[str] = ()) -> str:
    """Put an index of ``(platform, manifest digest)`` under every tag; its digest.

    The platform images were pushed to the first tag's repository, so every tag must name
    that repository (an index cannot reference manifests of another repository).
    """
    first = parse_reference(tags[0])
    repo = f"{first.registry}/{first.repository}"
    for tag in tags[1:]:
        ref = parse_reference(tag)
        if (ref.registry, ref.repository) != (first.registry, first.repository):
            raise ConfigError(
                f"a multi-platform build's tags must share one repository ({tags[0]} vs {tag})",
                step="validate request",
                hint="build once per repository, or tag the other repository afterwards",
            )
    client = RegistryClient(insecure_registries=insecure_registries)
    manifests = [describe(client, f"{repo}@{digest}", platform) for platform, digest in entries]
    digest = ""
    for tag in tags:
        digest = push_index(client, repo, parse_reference(tag).tag or "latest", manifests)
    return digest


def remove_temporary_tags(ops: RegistryOps, tags: list[str]) -> list[str]:
    """Remove the per-platform temporary ``tags`` but keep the manifests they name, which the
    index references; the tags left in place, named by one warning. Never raises.

    The distribution API deletes manifests, by digest (distribution 2.x refuses a tag there),
    and deleting one removes the tags that name it: the platform manifest itself must stay.
    So each tag is first moved onto a placeholder of its own (an empty index naming the tag),
    and the placeholder is deleted by digest, taking the tag with it."""
    left, why = _remove_tags(ops, tags)
    if left:
        _warn(left, f"stay in the registry ({why}); the index does not need them: {_ADVICE}")
    return left


def discard_temporary_tags(
    ops: RegistryOps, tags: list[str], budget_s: float, settle: Callable[[], list[str]] | None = None
) -> list[str]:
    """After a multi-platform build failed or was interrupted: remove those of the temporary
    ``tags`` that were pushed (a platform whose Job had not pushed has none: nothing to do),
    as :func:`remove_temporary_tags` does, the platform images left untagged for the registry's
    garbage collection. First ``settle()``, if given: it waits until no pod of the build can
    push any more (a pod still pushing would put its tag back after the removal) and returns
    the tags whose pod might still.

    All of it within ``budget_s`` seconds, in a daemon thread, so a stuck registry or cluster
    cannot hold the build's error back, and a second Ctrl-C ends the wait at once. Never raises
    an ``Exception`` (the build's own error is what the caller raises); what stays, or may
    reappear, is named by one warning and returned."""
    done: list[tuple[list[str], list[str], str]] = []

    def work() -> None:
        unsettled: list[str] = []
        try:
            unsettled = settle() if settle is not None else []
            left, why = _remove_tags(ops, tags)
        except Exception as exc:  # a bug or an unexpected answer: still only a warning
            left, why = list(tags), f"{type(exc).__name__}: {exc}"
        done.append((left, unsettled, why))

    # The reporter is a context variable: the thread gets the caller's context.
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(work,), name="rtbuild-k8s-discard-tags", daemon=True
    )
    thread.start()
    thread.join(budget_s)
    if not done:
        _warn(tags, f"may stay in the registry (their removal did not end within {budget_s:g}s); {_UNUSED}")
        return list(tags)
    left, unsettled, why = done[0]
    if left:
        _warn(left, f"may stay in the registry ({why}); {_UNUSED}")
    late = [tag for tag in unsettled if tag not in left]
    if late:
        _warn(late, f"may still be pushed (the pod had not stopped when they were removed); {_UNUSED}")
    return left + late


def _remove_tags(ops: RegistryOps, tags: list[str]) -> tuple[list[str], str]:
    """The tags left in place and why (after the first refusal the others are not tried)."""
    from .registry_ops import OCI_INDEX

    left: list[str] = []
    why = ""
    for tag in tags:
        if not why:
            try:
                why = _remove_tag(ops, tag, OCI_INDEX)
            except AgentRuntimeBuildError as exc:  # unreachable, refused, auth: the build still stands
                why = exc.message
        if why:
            left.append(tag)
    return left, why


_ADVICE = "delete them once the registry allows it (docs/builders/kubernetes.md)"
_UNUSED = f"the build did not finish, nothing references them: {_ADVICE}"


def _warn(tags: list[str], what: str) -> None:
    get_reporter().event("warning", tags=tags, message=f"the temporary per-platform tag(s) {', '.join(tags)} {what}")


def _remove_tag(ops: RegistryOps, tag: str, media_type: str) -> str:
    """``""`` once ``tag`` is gone; otherwise why it stays (naming its platform image still)."""
    ref = parse_reference(tag)
    placeholder = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [],
        "annotations": {PLACEHOLDER_ANNOTATION: tag},
    }
    body = json.dumps(placeholder, separators=(",", ":")).encode()
    path = f"/v2/{ref.repository}/manifests/sha256:{hashlib.sha256(body).hexdigest()}"
    original = ops.manifest(ref)
    if original is None:  # never pushed (a failed build's platform that had not got there)
        return ""
    # Asked while the placeholder does not exist: a registry that does not delete says so
    # (405 UNSUPPORTED) before the tag is touched; one that does answers 404.
    probe = ops.request(ref, "DELETE", path, actions="pull,push,delete")
    if probe.status_code not in (202, 404):
        return _refusal(probe)
    ops.put_manifest(ref, ref.tag or "latest", media_type, body)
    try:
        deleted = ops.request(ref, "DELETE", path, actions="pull,push,delete")
        if deleted.status_code in (200, 202, 404):
            return ""
        why = _refusal(deleted)
    except AgentRuntimeBuildError as exc:
        why = exc.message
    ops.put_manifest(ref, ref.tag or "latest", original[0], original[1])  # the tag as it was
    return why


def _refusal(response: httpx.Response) -> str:
    try:
        codes = [str(e.get("code")) for e in response.json().get("errors", []) if isinstance(e, dict)]
    except (ValueError, AttributeError):
        codes = []
    return " ".join([f"the registry answered DELETE with HTTP {response.status_code}", *codes[:1]])


__all__ = ["assemble_index", "discard_temporary_tags", "remove_temporary_tags"]
