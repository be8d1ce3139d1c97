"""Multi-platform builds on an engine whose local image store holds one platform per tag.

Docker 20.10 (no containerd image store) cannot keep ``linux/amd64`` and ``linux/arm64``
under one local tag, and neither engine pushes an index from separately built images. So
a request for several platforms becomes one build per platform, each under per-platform
tags (``TAG-linux-arm64``, :func:`rtbuild.oci.platform_tag`); with push, each is pushed and
one index per requested tag is assembled through the registry API
(:func:`rtbuild.oci.push_index`). Without push, the requested tags name the native
platform's image (else the first one's) and the per-platform tags stay local.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtbuild.oci import Credentials


@dataclass
class PlatformPlan:
    """One platform's build: the local tags it gets, and the tags that are then pushed."""

    platform: str
    tags: list[str]
    push_tags: list[str] = field(default_factory=list)


def native_platform() -> str:
    """This machine's platform as an engine names it (``linux/amd64``, ``linux/arm64``)."""
    machine = _platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm/v7"}.get(
        machine, machine
    )
    return f"linux/{arch}"


def split_platforms(platform: str | None) -> list[str]:
    """``"linux/amd64, linux/arm64"`` -> ``["linux/amd64", "linux/arm64"]`` (order kept, no duplicates)."""
    return list(dict.fromkeys(p.strip() for p in (platform or "").split(",") if p.strip()))


def with_tag(name: str, tag: str) -> str:
    """``name`` with its tag replaced by ``tag`` (digest dropped), in the familiar form."""
    from rtbuild.oci import Reference, parse_reference

    ref = parse_reference(name)
    return Reference(ref.registry, ref.repository, tag, None).familiar


def plan_platforms(tags: Sequence[str], platforms: Sequence[str], *, push: bool) -> list[PlatformPlan]:
    """Which tags each platform's build gets (see the module docstring)."""
    from rtbuild.oci import normalize_platform, parse_reference, platform_tag

    natives = {normalize_platform(native_platform())}
    primary = next((p for p in platforms if normalize_platform(p) in natives), platforms[0])
    plans = []
    for plat in platforms:
        own = [with_tag(tag, platform_tag(parse_reference(tag).tag or "latest", plat)) for tag in tags]
        local = own + ([] if push or plat != primary else list(tags))
        plans.append(PlatformPlan(plat, local, own if push else []))
    return plans


def assemble_indexes(
    tags: Sequence[str],
    platforms: Sequence[str],
    *,
    insecure_registries: Sequence[str] = (),
    credentials: Callable[[str], Credentials | None] | None = None,
) -> dict[str, str]:
    """After every platform's ``TAG-os-arch`` image is pushed: one index per requested tag.

    ``credentials(registry)`` overrides the docker-config lookup (Podman adds its
    ``auth.json``). Returns ``{tag: index digest}``.
    """
    from rtbuild._framework.progress import get_reporter
    from rtbuild.oci import RegistryClient, describe, parse_reference, platform_tag, push_index

    client = RegistryClient(insecure_registries=insecure_registries, credentials=credentials)
    reporter = get_reporter()
    digests: dict[str, str] = {}
    for tag in tags:
        ref = parse_reference(tag)
        base = ref.tag or "latest"
        entries = [describe(client, with_tag(tag, platform_tag(base, plat)), plat) for plat in platforms]
        digests[tag] = push_index(client, ref, base, entries)
        reporter.event(
            "index_pushed",
            image=tag,
            digest=digests[tag],
            platforms=list(platforms),
            message=f"pushed index {tag} ({', '.join(platforms)}) {digests[tag]}",
        )
    return digests


__all__ = ["PlatformPlan", "assemble_indexes", "native_platform", "plan_platforms", "split_platforms", "with_tag"]
