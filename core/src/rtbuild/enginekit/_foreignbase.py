"""Base images the engine holds only for another platform than the build's, for the no-op skip.

BuildKit uses a local image only for the platform it builds. For another platform (the
arm64 build of ``FROM reg/base:1`` with the amd64 image local, as a ``docker pull`` of a
base index leaves it) it reads the base from its registry, so the local image's ID says
nothing about what that build starts from. The skip counts the registry's image for the
build's platform instead: the config digest of the index entry (or single image) the tag
names there, which is that image's ID as the engine would give it, and its ``ONBUILD``
triggers. When the registry cannot tell, the skip is off for the build, with the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtbuild.oci import RegistryClient

    from .engine import EngineAPI


def _platform_of(document: Mapping[str, Any]) -> str:
    from rtbuild.oci import normalize_platform

    parts = [str(document.get(key) or "") for key in ("os", "architecture", "variant")]
    return normalize_platform("/".join(part for part in parts if part))


def foreign_bases(
    api: EngineAPI, bases: Sequence[str], platform: str | None, insecure_registries: Sequence[str] = ()
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``(resolved, reasons)``: for each base the engine holds only for another platform
    than ``platform``, the inspect answer the input digest counts for it (``Id``: the
    registry's config digest for ``platform``; ``Config``: that config's), or a reason the
    skip cannot count it (then the build runs)."""
    if not platform:
        return {}, []  # the engine's own platform: what the engine holds is what it builds from
    from rtbuild.oci import normalize_platform

    wanted = normalize_platform(platform)
    resolved: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    client: RegistryClient | None = None
    for name in bases:
        info = api.inspect_image(name)
        if info is None:
            continue  # not local: compute_inputs answers that
        here = _platform_of({"os": info.get("Os"), "architecture": info.get("Architecture"), **_variant(info)})
        if not here or here == wanted:
            continue
        from rtbuild.oci import RegistryClient

        client = client or RegistryClient(insecure_registries=insecure_registries)
        found, why = registry_image(client, name, wanted)
        if found is None:
            reasons.append(
                f"the base image {name} here is for {here}; the engine reads the {platform} one from its"
                f" registry, which {why}"
            )
        else:
            resolved[name] = found
    return resolved, reasons


def _variant(info: Mapping[str, Any]) -> dict[str, Any]:
    return {"variant": info.get("Variant")} if info.get("Variant") else {}


def registry_image(client: RegistryClient, name: str, platform: str) -> tuple[dict[str, Any] | None, str]:
    """``name``'s image for ``platform`` as its registry holds it, in inspect's shape
    (``{"Id": config digest, "Config": ...}``); ``None`` and why when it cannot be told."""
    from rtbuild.errors import AgentRuntimeBuildError
    from rtbuild.oci import DOCKER_LIST, OCI_INDEX, Reference, get_manifest, parse_reference

    try:
        ref = parse_reference(name)
        manifest = get_manifest(client, ref)
        if manifest is None:
            return None, "does not have it"
        document = manifest.json()
        if manifest.media_type in (DOCKER_LIST, OCI_INDEX) or "manifests" in document:
            entries = document.get("manifests")
            matching = [
                entry
                for entry in (entries if isinstance(entries, list) else [])
                if isinstance(entry, dict)
                and isinstance(entry.get("platform"), dict)
                and _platform_of(entry["platform"]) == platform
            ]
            if len(matching) != 1 or not isinstance(matching[0].get("digest"), str):
                return None, f"lists {platform} {len(matching)} times"
            manifest = get_manifest(client, Reference(ref.registry, ref.repository, None, matching[0]["digest"]))
            if manifest is None:
                return None, f"does not have the manifest its index names for {platform}"
            document = manifest.json()
        config = document.get("config")
        digest = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            return None, "answered a manifest naming no config"
        response = client.request(ref, "GET", f"/v2/{ref.repository}/blobs/{digest}")
        if response.status_code != 200:
            return None, f"answered HTTP {response.status_code} for its config"
        data = response.content
    except (AgentRuntimeBuildError, ValueError) as exc:
        return None, f"could not be read ({exc})"
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        return None, "answered a config that is not its digest"
    try:
        loaded = json.loads(data)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        return None, "answered a config that is not a JSON object"
    return {"Id": digest, "Config": loaded.get("config") or {}}, ""


class WithForeign:
    """An inspector answering ``resolved`` for the foreign bases and ``api`` otherwise."""

    def __init__(self, api: EngineAPI, resolved: Mapping[str, dict[str, Any]]) -> None:
        self.api, self.resolved = api, resolved

    def inspect_image(self, name: str) -> Mapping[str, Any] | None:
        return self.resolved[name] if name in self.resolved else self.api.inspect_image(name)


def has_foreign_base(api: EngineAPI, bases: Sequence[str], platform: str | None) -> bool:
    """Whether one of ``bases`` is here only for another platform than ``platform`` (local
    inspects only: the first-build path asks before the engine starts)."""
    if not platform:
        return False
    from rtbuild.oci import normalize_platform

    wanted = normalize_platform(platform)
    for name in bases:
        info = api.inspect_image(name)
        if info is None:
            continue
        here = _platform_of({"os": info.get("Os"), "architecture": info.get("Architecture"), **_variant(info)})
        if here and here != wanted:
            return True
    return False


__all__ = ["WithForeign", "foreign_bases", "has_foreign_base", "registry_image"]
