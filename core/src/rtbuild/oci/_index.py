"""Multi-platform images in a registry: read manifests, assemble an OCI index / manifest list.

An engine that cannot push a multi-platform image itself (Docker 20.10 without a containerd
image store, a Kubernetes Job per architecture) pushes one image per platform, each under a
tag of its own (:func:`platform_tag`), then :func:`push_index` puts one index that names
them all under the real tag, through the registry API. :func:`platforms_of` answers which
platforms a reference offers (an index's list, or a single image's config), so
``image_exists`` can treat an index that lacks the requested platform as absent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtbuild.errors import RegistryError
from rtbuild.oci._references import Reference, parse_reference
from rtbuild.oci._registry import MANIFEST_MEDIA_TYPES, RegistryClient

if TYPE_CHECKING:
    import httpx

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
_TAG_CHARS = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry stores it: its media type, digest and exact bytes."""

    media_type: str
    digest: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def json(self) -> dict[str, Any]:
        """The manifest as a JSON object; a :class:`RegistryError` when it is not one."""
        return _json_object(self.data, f"manifest {self.digest}")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` parsed as a JSON object: a registry that answers anything else is broken."""
    try:
        loaded = json.loads(data)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        raise RegistryError(
            f"the registry answered {what} with {len(data)} bytes that are not a JSON object",
            step="query registry",
            hint="check the registry (or a proxy in front of it) serves the distribution API",
        )
    return loaded


@dataclass(frozen=True)
class PlatformManifest:
    """One entry of an index: an image manifest in the same repository, and its platform."""

    digest: str
    size: int
    media_type: str
    platform: str  # "os/arch[/variant]"

    def descriptor(self) -> dict[str, Any]:
        parts = self.platform.split("/")
        platform = {"architecture": parts[1], "os": parts[0]}
        if len(parts) > 2 and parts[2]:
            platform["variant"] = parts[2]
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, "platform": platform}


def normalize_platform(platform: str) -> str:
    """``os/arch[/variant]`` lower-cased, as containerd's platform matcher reads it: arm64's
    default variant ``v8`` dropped (``linux/arm64`` and ``linux/arm64/v8`` are alike), and
    32-bit arm's default ``v7`` added (``linux/arm`` is ``linux/arm/v7``)."""
    parts = [part.strip().lower() for part in platform.strip().split("/") if part.strip()]
    if len(parts) == 3 and parts[1] == "arm64" and parts[2] == "v8":
        parts = parts[:2]
    elif len(parts) == 2 and parts[1] == "arm":
        parts.append("v7")
    return "/".join(parts)


def platform_tag(tag: str, platform: str) -> str:
    """The tag one platform's image is pushed under before the index names it:
    ``TAG-os-arch[-variant]`` (``1.0-linux-arm64``), within the 128 characters a tag may have."""
    suffix = "-" + _TAG_CHARS.sub("-", normalize_platform(platform).replace("/", "-"))
    return tag[: 128 - len(suffix)] + suffix


def _ref(ref: Reference | str) -> Reference:
    return parse_reference(ref) if isinstance(ref, str) else ref


def _failed(ref: Reference, what: str, response: httpx.Response, step: str) -> RegistryError:
    return RegistryError(
        f"registry {ref.registry} answered HTTP {response.status_code} to {what} {ref.repository}",
        step=step,
        log_tail=response.text.splitlines()[-5:] if response.text else None,
        hint="check the registry's logs; it must accept manifest lists / OCI indexes for this repository",
    )


def get_manifest(client: RegistryClient, ref: Reference | str) -> Manifest | None:
    """The manifest ``ref`` names (an index or an image manifest); ``None`` on 404."""
    ref = _ref(ref)
    path = f"/v2/{ref.repository}/manifests/{ref.manifest_ref}"
    response = client.request(ref, "GET", path, headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)})
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise _failed(ref, "a manifest GET of", response, "query registry")
    data = response.content
    digest = response.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(data).hexdigest()
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if not media_type or media_type == "application/json":
        media_type = str(_json_object(data, f"the manifest of {ref}").get("mediaType") or OCI_MANIFEST)
    return Manifest(media_type, digest, data)


def get_blob(client: RegistryClient, ref: Reference | str, digest: str) -> bytes:
    """A blob of ``ref``'s repository (an image config)."""
    ref = _ref(ref)
    response = client.request(ref, "GET", f"/v2/{ref.repository}/blobs/{digest}")
    if response.status_code != 200:
        raise _failed(ref, f"a GET of blob {digest} in", response, "query registry")
    return response.content


def platforms_of(client: RegistryClient, ref: Reference | str) -> tuple[str, ...] | None:
    """The platforms ``ref`` offers: an index's entries, or a single image's config
    (``os/arch[/variant]``, normalised); ``None`` when the registry does not hold ``ref``."""
    ref = _ref(ref)
    manifest = get_manifest(client, ref)
    if manifest is None:
        return None
    document = manifest.json()
    if manifest.media_type in INDEX_TYPES or "manifests" in document:
        found = []
        entries = document.get("manifests") or []
        for entry in entries if isinstance(entries, list) else [None]:
            if not isinstance(entry, dict) or not isinstance(entry.get("platform") or {}, dict):
                raise RegistryError(
                    f"the registry's index for {ref} holds an entry that is not a manifest descriptor",
                    step="query registry",
                    hint="check the registry (or a proxy in front of it) serves the distribution API",
                )
            platform = entry.get("platform") or {}
            if platform.get("os") == "unknown":  # attestation manifests BuildKit adds
                continue
            parts = [platform.get("os", ""), platform.get("architecture", ""), platform.get("variant", "")]
            found.append(normalize_platform("/".join(part for part in parts if part)))
        return tuple(found)
    descriptor = document.get("config") or {}
    config_digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    if not config_digest:
        return ()
    config = _json_object(get_blob(client, ref, str(config_digest)), f"the config blob of {ref}")
    parts = [config.get("os", ""), config.get("architecture", ""), config.get("variant", "")]
    return (normalize_platform("/".join(part for part in parts if part)),)


def has_platforms(client: RegistryClient, ref: Reference | str, platforms: Iterable[str]) -> bool:
    """Whether the registry holds ``ref`` for every one of ``platforms`` (an index lacking
    one of them is absent)."""
    offered = platforms_of(client, ref)
    if offered is None:
        return False
    return all(normalize_platform(platform) in offered for platform in platforms)


def describe(client: RegistryClient, ref: Reference | str, platform: str) -> PlatformManifest:
    """The index entry for the image manifest ``ref`` names, built for ``platform``."""
    ref = _ref(ref)
    manifest = get_manifest(client, ref)
    if manifest is None:
        raise RegistryError(
            f"registry {ref.registry} has no manifest for {ref} (pushed a moment ago)",
            step="assemble index",
            hint="check the registry's storage and logs",
        )
    if manifest.media_type in INDEX_TYPES:
        raise RegistryError(
            f"{ref} is already an index; an index entry must be a single-platform image",
            step="assemble index",
            hint="push each platform's image under its own tag, then assemble the index from those",
        )
    return PlatformManifest(manifest.digest, manifest.size, manifest.media_type, platform)


def push_index(
    client: RegistryClient,
    repo: Reference | str,
    tag: str,
    manifests: Sequence[PlatformManifest],
) -> str:
    """PUT one index naming ``manifests`` (all already in ``repo``) under ``repo:tag``;
    return its digest.

    A Docker manifest list when every entry is a Docker schema 2 manifest (what Docker
    20.10 pushes), else an OCI image index: registries and engines read both.
    """
    if not manifests:
        raise ValueError("an index needs at least one manifest")
    ref = _ref(repo)
    ref = Reference(ref.registry, ref.repository, tag, None)
    media_type = DOCKER_LIST if all(m.media_type == DOCKER_MANIFEST for m in manifests) else OCI_INDEX
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [manifest.descriptor() for manifest in manifests],
    }
    data = json.dumps(document, indent=2).encode()
    path = f"/v2/{ref.repository}/manifests/{tag}"
    response = client.request(ref, "PUT", path, action="pull,push", headers={"Content-Type": media_type}, content=data)
    if response.status_code not in (200, 201, 202):
        raise _failed(ref, "the index PUT for", response, "push index")
    return response.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(data).hexdigest()


__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Manifest",
    "PlatformManifest",
    "describe",
    "get_blob",
    "get_manifest",
    "has_platforms",
    "normalize_platform",
    "platform_tag",
    "platforms_of",
    "push_index",
]
