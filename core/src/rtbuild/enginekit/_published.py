"""Whether a multi-platform push would change nothing in the registry.

An unchanged multi-platform request skips every platform's build, and used to push every
``TAG-os-arch`` image and every index again. :func:`indexes_current` reads the registry
instead and answers whether it already holds exactly what those pushes would leave there;
when it cannot prove that, the pushes run as before (never stale: any doubt pushes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtbuild.oci import Credentials, Reference, RegistryClient


class _Stale(Exception):
    """The registry does not hold what the push would leave (the reason is the message)."""


def indexes_current(
    tags: Sequence[str],
    per_platform: Mapping[str, Mapping[str, Any]],
    *,
    insecure_registries: Sequence[str] = (),
    credentials: Callable[[str], Credentials | None] | None = None,
) -> dict[str, str] | None:
    """``{tag: index digest}`` when the registry already holds, under every requested tag,
    what a multi-platform push of ``per_platform`` (platform -> that build's details, as
    :func:`build_each_platform` answers them) would put there; ``None`` otherwise.

    Every platform needs its local ``image_id``, skipped as unchanged or built now (a build
    whose every step was cached can make the very image the registry holds: Podman's layer
    cache does under ``--force`` or ``--pull``). For each tag, the registry must
    hold an index listing exactly the requested platforms, and for each platform:

    - the registry's ``TAG-os-arch`` names the index entry's manifest (the push moves that
      tag too), whose bytes hash to that digest and whose media type and size the entry gives;
    - that manifest is one image whose config blob is the local image's, byte for byte (its
      digest is the local image ID: Docker's and Podman's IDs are their configs' digests;
      the config names the platform and the layers' content digests, and pulls check the
      layers against it), and the registry has every layer it names.

    So the registry's image is the local image (the one the skip proved current, or the
    build just made), not merely one that carries the same label: a platform image from
    another build differs in its config.

    Any other answer, an unreachable registry, a malformed document: ``None`` (push).
    In build-many, a tag another entry pushed with these very images is current unread
    (:func:`rtbuild.enginekit._batchpush.pushed_by_batch`).
    """
    from rtbuild._framework.progress import get_reporter
    from rtbuild.errors import AgentRuntimeBuildError
    from rtbuild.oci import RegistryClient

    from ._batchpush import pushed_by_batch, record_indexes

    by_batch = pushed_by_batch(tags, per_platform, report=False)
    if by_batch and all(tag in by_batch for tag in tags):
        return by_batch
    requested, tags = tags, [tag for tag in tags if tag not in by_batch]
    wanted: dict[str, str] = {}
    for platform, entry in per_platform.items():
        image_id = entry.get("image_id")
        if not image_id:
            return None  # no local image to compare: push
        wanted[platform] = _sha256(str(image_id))
    client = RegistryClient(insecure_registries=insecure_registries, credentials=credentials)
    checked: dict[tuple[str, str, str], str] = {}  # (registry, repository, digest) -> platform or 'layer'
    found: dict[str, str] = {}
    try:
        for tag in tags:
            found[tag] = _index_current(client, tag, wanted, checked)
    except _Stale as why:
        get_reporter().event("push_needed", reason=str(why), message=f"pushing: {why}")
        return None
    except (AgentRuntimeBuildError, ValueError, TypeError, KeyError) as exc:
        # The push reports a registry that cannot be reached, better than this check can.
        get_reporter().event("push_needed", reason=str(exc), message=f"pushing: the registry check failed: {exc}")
        return None
    get_reporter().event(
        "registry_current",
        image=tags[0],
        index_digests=found,
        message=f"the registry holds {', '.join(tags)} for {', '.join(wanted)} already: nothing pushed",
    )
    record_indexes(found, per_platform)
    return {tag: by_batch.get(tag) or found[tag] for tag in requested}


def _index_current(
    client: RegistryClient, tag: str, wanted: Mapping[str, str], checked: dict[tuple[str, str, str], str]
) -> str:
    """The digest of ``tag``'s index when it is what the push would leave; else :class:`_Stale`."""
    from rtbuild.oci import get_manifest, normalize_platform, parse_reference, platform_tag
    from rtbuild.oci._index import INDEX_TYPES

    from ._platforms import with_tag

    ref = parse_reference(tag)
    index = get_manifest(client, ref)
    if index is None:
        raise _Stale(f"the registry has no {tag}")
    document = index.json()
    if index.media_type not in INDEX_TYPES:
        raise _Stale(f"{tag} in the registry is not an index")
    entries = document.get("manifests")
    if not isinstance(entries, list):
        raise _Stale(f"the index {tag} lists no manifests")
    listed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(platform, dict):
            raise _Stale(f"the index {tag} holds an entry without a platform")
        parts = [str(platform.get(key) or "") for key in ("os", "architecture", "variant")]
        name = normalize_platform("/".join(part for part in parts if part))
        if name in listed:
            raise _Stale(f"the index {tag} lists {name} twice")
        listed[name] = entry
    if set(listed) != {normalize_platform(p) for p in wanted}:
        raise _Stale(f"the index {tag} lists {', '.join(sorted(listed)) or 'nothing'}, not {', '.join(wanted)}")
    for platform, image_id in wanted.items():
        entry = listed[normalize_platform(platform)]
        own = with_tag(tag, platform_tag(ref.tag or "latest", platform))
        manifest = get_manifest(client, own)
        if manifest is None or manifest.digest != entry.get("digest"):
            raise _Stale(f"{own} in the registry is not the manifest the index {tag} names for {platform}")
        if "sha256:" + hashlib.sha256(manifest.data).hexdigest() != manifest.digest:
            raise _Stale(f"the registry's bytes for {own} are not its digest {manifest.digest}")
        if entry.get("mediaType") != manifest.media_type or entry.get("size") != manifest.size:
            raise _Stale(f"the index {tag} describes {platform}'s manifest with another media type or size")
        if checked.get((ref.registry, ref.repository, manifest.digest)) == platform:
            continue  # another tag of this repository named the same manifest: checked already
        _image_current(client, parse_reference(own), manifest.json(), platform, image_id, checked)
        checked[(ref.registry, ref.repository, manifest.digest)] = platform
    return index.digest


def images_current(
    tags: Sequence[str],
    image_id: str,
    *,
    insecure_registries: Sequence[str] = (),
    credentials: Callable[[str], Credentials | None] | None = None,
) -> dict[str, str] | None:
    """``{tag: manifest digest}`` (of the tags read) when the registry already holds, under
    every one of ``tags``, the local single-platform image ``image_id`` (a push would change
    nothing); ``None`` otherwise, after a ``push_needed`` event naming why.

    Each tag must name one image manifest (not an index) whose bytes hash to its digest,
    whose config blob is the local image's byte for byte (its digest is ``image_id``), and
    whose every layer blob the registry has: what :func:`indexes_current` asks of each
    platform's image. A tag this build-many batch pushed with this image already counts
    unread. An unreachable registry, a refused login, an index, another image, a missing
    blob or a malformed answer: ``None`` (push, as before).
    """
    from rtbuild._framework.progress import get_reporter
    from rtbuild._framework.pushonce import is_shared, pushed_already, record_push
    from rtbuild.errors import AgentRuntimeBuildError
    from rtbuild.oci import RegistryClient, get_manifest, parse_reference
    from rtbuild.oci._index import INDEX_TYPES

    wanted = _sha256(image_id)
    by_batch = [tag for tag in tags if pushed_already(tag, image_id)]
    found: dict[str, str] = {}
    checked: dict[tuple[str, str, str], str] = {}
    client: RegistryClient | None = None
    try:
        for tag in (tag for tag in tags if tag not in by_batch):
            client = client or RegistryClient(insecure_registries=insecure_registries, credentials=credentials)
            ref = parse_reference(tag)
            manifest = get_manifest(client, ref)
            if manifest is None:
                raise _Stale(f"the registry has no {tag}")
            if manifest.media_type in INDEX_TYPES:
                raise _Stale(f"{tag} in the registry is an index, not one image")
            if "sha256:" + hashlib.sha256(manifest.data).hexdigest() != manifest.digest:
                raise _Stale(f"the registry's bytes for {tag} are not its digest {manifest.digest}")
            _image_current(client, ref, manifest.json(), None, wanted, checked)
            found[tag] = manifest.digest
    except _Stale as why:
        get_reporter().event("push_needed", image=tags[0], reason=str(why), message=f"pushing: {why}")
        return None
    except (AgentRuntimeBuildError, ValueError, TypeError, KeyError, AttributeError) as exc:
        message = f"pushing: the registry check failed: {exc}"
        get_reporter().event("push_needed", image=tags[0], reason=str(exc), message=message)
        return None
    for tag in by_batch:
        get_reporter().event("push_skipped", image=tag, message=f"{tag}: pushed already by this batch (same image)")
    if found:
        get_reporter().event(
            "registry_current",
            image=tags[0],
            digests=found,
            message=f"the registry holds {', '.join(found)} as this image already: nothing pushed",
        )
    for tag, digest in found.items():
        if is_shared(tag):
            record_push(tag, image_id, digest)
    return found


def _image_current(
    client: RegistryClient,
    ref: Reference,
    manifest: Mapping[str, Any],
    platform: str | None,
    image_id: str,
    checked: dict[tuple[str, str, str], str],
) -> None:
    """:class:`_Stale` unless ``manifest`` is the local image ``image_id`` for ``platform``
    (``None``: the one the config names), with every blob it names in the registry."""
    from rtbuild.oci._index import INDEX_TYPES, get_blob, normalize_platform

    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        raise _Stale(f"{ref} in the registry is an index, not {platform}'s image")
    config = manifest.get("config")
    if not isinstance(config, dict) or config.get("digest") != image_id:
        raise _Stale(f"{ref} in the registry is another image than the local {platform} one")
    data = get_blob(client, ref, image_id)
    if "sha256:" + hashlib.sha256(data).hexdigest() != image_id:
        raise _Stale(f"the registry's config blob of {ref} is not its digest")
    document = json.loads(data)
    if not isinstance(document, dict):
        raise _Stale(f"the registry's config blob of {ref} is not a JSON object")
    parts = [str(document.get(key) or "") for key in ("os", "architecture", "variant")]
    own = normalize_platform("/".join(part for part in parts if part))
    if platform is not None and own != normalize_platform(platform):
        raise _Stale(f"{ref} in the registry is not a {platform} image")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise _Stale(f"{ref} in the registry names no layers")
    for layer in layers:
        digest = layer.get("digest") if isinstance(layer, dict) else None
        if not isinstance(digest, str):
            raise _Stale(f"{ref} in the registry names a layer without a digest")
        if (ref.registry, ref.repository, digest) in checked:
            continue  # another platform's image has this layer: asked already
        if not _blob_there(client, ref, digest):
            raise _Stale(f"the registry lacks a layer of {ref} ({digest})")
        checked[(ref.registry, ref.repository, digest)] = "layer"


def _blob_there(client: RegistryClient, ref: Reference, digest: str) -> bool:
    response = client.request(ref, "HEAD", f"/v2/{ref.repository}/blobs/{digest}")
    if response.status_code in (200, 404):
        return response.status_code == 200
    raise ValueError(f"registry {ref.registry} answered HTTP {response.status_code} to a HEAD of blob {digest}")


def _sha256(image_id: str) -> str:
    """An engine's image ID as a digest (Podman gives the hex alone)."""
    return image_id if image_id.startswith("sha256:") else "sha256:" + image_id


__all__ = ["images_current", "indexes_current"]
