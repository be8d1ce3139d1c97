"""Several platforms: one Job each, then a manifest list put under every tag."""

from __future__ import annotations

import json

from rtbuild import ConfigError
from rtbuild.oci import parse_reference

from .registry_ops import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, RegistryOps


def push_index(ops: RegistryOps, tags: list[str], entries: list[tuple[str, str]]) -> str:
    """Put a manifest list of ``(platform, manifest digest)`` under every tag; its digest.

    The platform images were pushed to the first tag's repository, so every tag must name
    that repository (a registry cannot reference manifests of another repository).
    """
    first = parse_reference(tags[0])
    for tag in tags[1:]:
        ref = parse_reference(tag)
        if (ref.registry, ref.repository) != (first.registry, first.repository):
            raise ConfigError(
                f"a multi-platform build's tags must share one repository ({tags[0]} vs {tag})",
                step="validate request",
                hint="build once per repository, or tag the other repository afterwards",
            )
    manifests = []
    oci = False
    for platform, digest in entries:
        found = ops.manifest(parse_reference(f"{first.registry}/{first.repository}@{digest}"))
        if found is None:
            raise ConfigError(f"the {platform} image {digest} is missing from {first.repository}", step="push index")
        media_type, body, _ = found
        oci = oci or media_type == OCI_MANIFEST
        os_name, _, rest = platform.partition("/")
        arch, _, variant = rest.partition("/")
        entry_platform = {"architecture": arch, "os": os_name, **({"variant": variant} if variant else {})}
        manifests.append({"mediaType": media_type, "size": len(body), "digest": digest, "platform": entry_platform})
    media_type = OCI_INDEX if oci else DOCKER_LIST
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}, indent=2).encode()
    digest = ""
    for tag in tags:
        ref = parse_reference(tag)
        digest = ops.put_manifest(ref, ref.tag or "latest", media_type, body)
    return digest


__all__ = ["push_index"]
