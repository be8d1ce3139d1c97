"""Several platforms: one Job each, then one index (manifest list) put under every tag,
with the core's index helpers (:func:`rtbuild.oci.describe`, :func:`rtbuild.oci.push_index`),
then the Jobs' temporary per-platform tags removed (:func:`remove_temporary_tags`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
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
    if left:
        get_reporter().event(
            "warning",
            tags=left,
            message=f"the temporary per-platform tag(s) {', '.join(left)} stay in the registry ({why}); the"
            " index does not need them: delete them once the registry allows it (docs/builders/kubernetes.md)",
        )
    return left


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
    # Asked while the placeholder does not exist: a registry that does not delete says so
    # (405 UNSUPPORTED) before the tag is touched; one that does answers 404.
    probe = ops.request(ref, "DELETE", path, actions="pull,push,delete")
    if probe.status_code not in (202, 404):
        return _refusal(probe)
    original = ops.manifest(ref)
    if original is None:
        return ""
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


__all__ = ["assemble_index", "remove_temporary_tags"]
