"""The registry's digest of a base image the engine holds no copy of.

The lock hash mixes in the engine's ID of the base image, so a base re-tagged locally
changes it. A base only in a registry has no engine ID (Docker's BuildKit keeps what it
fetched in its own store, not in ``docker images``), and BuildKit resolves its tag in the
registry on every build: re-tagging it there must change the lock hash too, or the
runtime built on the old base is reused. So its manifest digest counts instead: one
``HEAD`` request per request with such a base (a local base costs nothing more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from rtbuild._framework.config import Config
    from rtbuild.builder import RuntimeBuilder
    from rtbuild.oci import Reference


def base_identity(builder: RuntimeBuilder, image: str, local_id: str | None, config: Config) -> str | None:
    """What the lock hash counts for the base ``image``: the engine's ID ``local_id``, the
    registry's digest when there is none, and both when the request names a platform the
    local image is not for. The engines build such a platform from the base's registry
    (BuildKit uses a local image only for its own platform; Buildah pulls the other one),
    so a base index that moved there must change the hash although the local copy did not.
    """
    if not local_id:
        return registry_base_id(image, config)
    if not config.platform:
        return local_id
    from rtbuild.enginekit import split_platforms
    from rtbuild.oci import normalize_platform

    info = builder.inspect_image(image)
    here = {normalize_platform(p) for p in (info.platforms if info else ())}
    if not here or all(normalize_platform(p) in here for p in split_platforms(config.platform)):
        return local_id  # the local image is what every requested platform starts from
    remote = registry_base_id(image, config)
    return f"{local_id} {remote}" if remote else local_id


def registry_base_id(image: str, config: Config) -> str | None:
    """``image``'s manifest digest in its registry, or ``None`` when it is pinned by digest
    (the reference says it all) or the registry cannot tell (a warning says so; the
    reference alone counts then, and the engine, which needs the registry too, decides)."""
    from rtbuild._framework.progress import get_reporter
    from rtbuild.errors import AgentRuntimeBuildError
    from rtbuild.oci import parse_reference

    if image.strip().lower() == "scratch":
        return None  # no image at all
    try:
        ref = parse_reference(image)
    except AgentRuntimeBuildError:
        return None  # the build reports the reference itself
    if ref.digest:
        return None
    why = ""
    try:
        response = _head_manifest(ref, config)
        digest = str(response.headers.get("Docker-Content-Digest", ""))
        if response.status_code == 200 and digest.startswith("sha256:"):
            return digest
        why = f"HTTP {response.status_code}" + ("" if response.status_code != 200 else " without a digest")
    except AgentRuntimeBuildError as exc:
        why = exc.message
    else:
        if response.status_code == 404:  # `docker pull` (the advice below) would fail the same way
            get_reporter().event(
                "base_unresolved",
                image=image,
                message=f"{image} is not in its registry (HTTP 404: no such repository or tag): check its name"
                " and tag; the build fails unless the engine finds it elsewhere (a local copy, a mirror)",
            )
            return None
    get_reporter().event(
        "base_unresolved",
        image=image,
        message=f"cannot tell which image {image} names in its registry ({why}): the lock hash counts its"
        " reference only; `docker pull` it to count the engine's copy",
    )
    return None


def _head_manifest(ref: Reference, config: Config) -> httpx.Response:
    from rtbuild.oci import RegistryClient
    from rtbuild.oci._registry import MANIFEST_MEDIA_TYPES

    client = RegistryClient(insecure_registries=config.insecure_registries)
    path = f"/v2/{ref.repository}/manifests/{ref.manifest_ref}"
    return client.request(ref, "HEAD", path, headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)})


def missing_from_registry(image: str, config: Config) -> bool:
    """Whether ``image``'s registry says it has no such repository, tag or digest (HTTP
    404); False when it has it, or cannot tell."""
    from rtbuild.errors import AgentRuntimeBuildError
    from rtbuild.oci import parse_reference

    try:
        return _head_manifest(parse_reference(image), config).status_code == 404
    except AgentRuntimeBuildError:
        return False


__all__ = ["base_identity", "missing_from_registry", "registry_base_id"]
