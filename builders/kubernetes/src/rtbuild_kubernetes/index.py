"""Several platforms: one Job each, then one index (manifest list) put under every tag,
with the core's index helpers (:func:`rtbuild.oci.describe`, :func:`rtbuild.oci.push_index`)."""

from __future__ import annotations

from collections.abc import Iterable

from rtbuild import ConfigError
from rtbuild.oci import RegistryClient, describe, parse_reference, push_index


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


__all__ = ["assemble_index"]
