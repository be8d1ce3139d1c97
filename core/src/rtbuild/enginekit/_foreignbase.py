"""Base images the engine holds only for another platform than the build's, for the no-op skip.

Neither engine builds a platform from a local image of another platform: BuildKit uses a
local image only for the platform it builds and reads another from the base's registry;
Buildah pulls the requested platform's image (and moves the name onto it). So for the
arm64 build of ``FROM reg/base:1`` with the amd64 image local (as a ``docker pull`` of a
base index leaves it) the local image's ID says nothing about what that build starts
from. The skip counts the registry's image for the build's platform instead: the config
digest of the index entry (or single image) the tag names there, which is that image's ID
as the engine would give it, and its ``ONBUILD`` triggers. When the registry cannot tell,
the skip is off for the build, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtbuild.oci import Credentials, RegistryClient

    from ._inputs import ImageInspector


def _platform_of(document: Mapping[str, Any]) -> str:
    from rtbuild.oci import normalize_platform

    parts = [str(document.get(key) or "") for key in ("os", "architecture", "variant")]
    return normalize_platform("/".join(part for part in parts if part))


def foreign_bases(
    api: ImageInspector,
    bases: Sequence[str],
    platform: str | None,
    *,
    dockerfile_text: str = "",
    insecure_registries: Sequence[str] = (),
    credentials: Callable[[str], Credentials | None] | None = None,
) -> tuple[ImageInspector, list[str]]:
    """``(inspector, reasons)`` for the input digest of a build for ``platform``: an inspector
    answering, for each base ``api`` holds only for another platform, the registry's image
    for ``platform`` (``Id``: its config digest, the ID the engine gives it once pulled;
    ``Config``: its config, with its ``ONBUILD`` triggers), and ``api``'s answers otherwise;
    when ``dockerfile_text`` has a stage naming its own platform (``FROM --platform=``, built
    from the local image), the local image's ID and triggers count as well. And why the skip
    cannot count a base (then the build runs: its registry cannot be read, has no such tag,
    or an index without ``platform`` or listing it twice).
    Ask it before the engine starts: a base that moves in between then leaves the label
    older than the image (built again next time), never newer.
    """
    if not platform:
        return api, []  # the engine's own platform: what the engine holds is what it builds from
    from rtbuild.oci import normalize_platform

    from ._platforms import _FROM_PLATFORM

    own_platform = bool(_FROM_PLATFORM.search(dockerfile_text))
    wanted = normalize_platform(platform)
    resolved: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    client: RegistryClient | None = None
    for name in bases:
        local = api.inspect_image(name)
        here = _platform_of_inspect(local)
        if not local or not here or here == wanted:
            continue
        from rtbuild.oci import RegistryClient

        client = client or RegistryClient(insecure_registries=insecure_registries, credentials=credentials)
        found, why = registry_image(client, name, wanted)
        if found is None:
            reasons.append(
                f"the base image {name} here is for {here}; the engine reads the {platform} one from its"
                f" registry, which {why}"
            )
        elif own_platform:
            # The local image counts too: a stage naming its own platform (FROM
            # --platform=$BUILDPLATFORM) builds from it, and its triggers run there.
            triggers = [*((local.get("Config") or {}).get("OnBuild") or []), *(found["Config"].get("OnBuild") or [])]
            resolved[name] = {
                "Id": f"{local.get('Id', '')} {found['Id']}",
                "Config": {**found["Config"], "OnBuild": triggers},
            }
        else:
            resolved[name] = found
    return (_WithForeign(api, resolved) if resolved else api), reasons


def _local_platform(api: ImageInspector, name: str) -> str:
    """The platform of the local image ``name`` (``""``: absent, or naming none)."""
    return _platform_of_inspect(api.inspect_image(name))


def _platform_of_inspect(info: Mapping[str, Any] | None) -> str:
    if info is None:
        return ""
    return _platform_of({"os": info.get("Os"), "architecture": info.get("Architecture"), **_variant(info)})


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
    import hashlib  # only here: loading OpenSSL costs every no-op build ~10 ms

    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        return None, "answered a config that is not its digest"
    try:
        loaded = json.loads(data)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        return None, "answered a config that is not a JSON object"
    return {"Id": digest, "Config": loaded.get("config") or {}}, ""


class _WithForeign:
    """An inspector answering ``resolved`` for the foreign bases and ``api`` otherwise."""

    def __init__(self, api: ImageInspector, resolved: Mapping[str, dict[str, Any]]) -> None:
        self.api, self.resolved = api, resolved

    def inspect_image(self, name: str) -> Mapping[str, Any] | None:
        return self.resolved[name] if name in self.resolved else self.api.inspect_image(name)


def has_foreign_base(api: ImageInspector, bases: Sequence[str], platform: str | None) -> bool:
    """Whether one of ``bases`` is here only for another platform than ``platform`` (local
    inspects only: a backend hashing alongside the engine asks before it starts)."""
    if not platform:
        return False
    from rtbuild.oci import normalize_platform

    wanted = normalize_platform(platform)
    return any(_local_platform(api, name) not in ("", wanted) for name in bases)


__all__ = ["foreign_bases", "has_foreign_base", "registry_image"]
