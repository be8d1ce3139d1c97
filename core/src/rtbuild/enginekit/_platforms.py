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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtbuild.errors import AgentRuntimeBuildError
    from rtbuild.oci import Credentials


@dataclass
class PlatformPlan:
    """One platform's build: the local tags it gets, and the tags that are then pushed."""

    platform: str
    tags: list[str]
    push_tags: list[str] = field(default_factory=list)
    #: The requested tag each of ``push_tags`` is for (its index goes there), in their order.
    requested: list[str] = field(default_factory=list)


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
        plans.append(PlatformPlan(plat, local, own if push else [], list(tags) if push else []))
    return plans


def build_each_platform(
    plans: Sequence[PlatformPlan],
    build: Callable[[PlatformPlan], dict[str, Any]],
    push: Callable[[str], str | None],
    unchanged: Callable[[dict[str, dict[str, Any]]], bool] | None = None,
) -> dict[str, dict[str, Any]]:
    """Build every platform of ``plans`` (``build(plan)`` answers that platform's details),
    then push their ``TAG-os-arch`` tags (``push(tag)`` answers the pushed digest), unless
    ``unchanged(details)`` answers that the registry holds them already
    (:func:`rtbuild.enginekit.indexes_current`). In build-many, the ``TAG-os-arch`` tags of
    a requested tag another entry pushed already with the same images are not pushed again
    (a ``push_skipped`` event for the requested tag).

    All-or-nothing where it can be: the platform whose build also takes the requested tags
    (without push) is built last, and nothing is pushed until every platform is built, so
    one platform failing leaves the requested tags and the registry as they were. Only the
    per-platform local tags of the platforms built before it stay (their images are right
    for their platform, and reused by the next build's no-op skip). The error names the
    platform that failed and what the others did.
    """
    from rtbuild.errors import AgentRuntimeBuildError as _Error

    fewest = min(len(plan.tags) for plan in plans)
    order = sorted(plans, key=lambda plan: len(plan.tags) > fewest)  # stable: the requested order otherwise
    done: dict[str, dict[str, Any]] = {}
    for plan in order:
        try:
            entry = build(plan)
        except _Error as exc:
            _for_platform(exc, plan, plans, done)
            raise
        done[plan.platform] = {**entry, "tags": list(plan.tags)}
    if not any(plan.push_tags for plan in plans):
        return {plan.platform: done[plan.platform] for plan in plans}
    from ._batchpush import pushed_by_batch

    skipped = pushed_by_batch(dict.fromkeys(t for plan in plans for t in plan.requested), done)
    if unchanged is not None and unchanged(done):
        return {plan.platform: done[plan.platform] for plan in plans}
    for plan in plans:
        for position, tag in enumerate(plan.push_tags):
            if position < len(plan.requested) and plan.requested[position] in skipped:
                continue  # build-many: another entry pushed it with these images
            done[plan.platform]["pushed_digest"] = push(tag)
    return {plan.platform: done[plan.platform] for plan in plans}


def _for_platform(
    exc: AgentRuntimeBuildError, plan: PlatformPlan, plans: Sequence[PlatformPlan], done: dict[str, dict[str, Any]]
) -> None:
    """``exc`` names ``plan``'s platform and what became of the others."""
    from rtbuild.oci import normalize_platform

    from ._failures import _BASE_HINT

    position = f"platform {plans.index(plan) + 1} of {len(plans)}"
    others = ", ".join(f"{platform} as {entry['tags'][0]}" for platform, entry in done.items())
    after = f"; built before it: {others}" if others else ""
    if any(p.push_tags for p in plans):
        after += "; nothing was pushed"
    exc.message = f"{plan.platform} ({position}): {exc.message}{after}"
    exc.args = (exc.message,)
    if exc.hint == _BASE_HINT and normalize_platform(plan.platform) != normalize_platform(native_platform()):
        exc.hint = (
            f"the base image may be here only for another platform (a local tag holds one): give {plan.platform}"
            " its own base (ARG TARGETARCH, FROM NAME:${TARGETARCH}; see docs/multi-platform.md), push the base"
            " as an index, or " + _BASE_HINT
        )


#: A ``FROM --platform=...`` line: a stage that picks its own platform (``$BUILDPLATFORM``
#: for cross-compiling), which a check by the target platform cannot judge.
_FROM_PLATFORM = re.compile(r"^\s*FROM\s+--platform", re.IGNORECASE | re.MULTILINE)


def warn_foreign_bases(
    dockerfile_text: str,
    bases: Sequence[str],
    platform: str,
    local_platform: Callable[[str], str | None],
    *,
    insecure_registries: Sequence[str] = (),
    credentials: Callable[[str], Credentials | None] | None = None,
) -> list[str]:
    """A ``warning`` event for each base image the engine would build ``platform`` from
    although it is another platform's: one not local for ``platform`` whose registry holds a
    single-platform image (no index) for another. Docker's BuildKit takes such an image
    without a word and Buildah with a warning in its log; the result is labelled
    ``platform`` and holds the other platform's programs. An index lacking ``platform`` is
    the engine's to refuse; a registry that cannot be asked is left to the engine too.
    Nothing is checked when a stage names its own platform (``FROM --platform=``).
    ``local_platform(name)`` answers the local image's platform (``None``: not local).
    Returns the bases warned about.
    """
    from rtbuild._framework.progress import get_reporter
    from rtbuild.errors import AgentRuntimeBuildError
    from rtbuild.oci import RegistryClient, get_manifest, normalize_platform, platforms_of
    from rtbuild.oci._index import INDEX_TYPES

    if _FROM_PLATFORM.search(dockerfile_text):
        return []
    wanted = normalize_platform(platform)
    client: RegistryClient | None = None
    warned = []
    for base in bases:
        try:
            if local_platform(base) == wanted:
                continue
            client = client or RegistryClient(insecure_registries=insecure_registries, credentials=credentials)
            manifest = get_manifest(client, base)
            if manifest is None or manifest.media_type in INDEX_TYPES or "manifests" in manifest.json():
                continue
            offered = platforms_of(client, base) or ()
        except (AgentRuntimeBuildError, ValueError):
            continue  # a name, registry or answer the engine reports better
        if offered and offered[0] != wanted:
            warned.append(base)
            get_reporter().event(
                "warning",
                image=base,
                platform=platform,
                message=f"base image {base} is a {offered[0]} image (its registry has no index with {platform}):"
                f" the engine builds {platform} from it anyway, so the {platform} image will hold {offered[0]}"
                f" programs; push {base} as an index that lists {platform}, or give {platform} its own base"
                " (ARG TARGETARCH, FROM NAME:${TARGETARCH})",
            )
    return warned


def assemble_indexes(
    tags: Sequence[str],
    platforms: Sequence[str],
    *,
    insecure_registries: Sequence[str] = (),
    credentials: Callable[[str], Credentials | None] | None = None,
    per_platform: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """After every platform's ``TAG-os-arch`` image is pushed: one index per requested tag.

    ``credentials(registry)`` overrides the docker-config lookup (Podman adds its
    ``auth.json``). ``per_platform`` (what :func:`build_each_platform` answered) lets
    build-many skip a tag another entry pushed with the same images (its index digest is
    the one that entry pushed). Returns ``{tag: index digest}``.
    """
    from rtbuild._framework.progress import get_reporter
    from rtbuild.oci import RegistryClient, describe, parse_reference, platform_tag, push_index

    from ._batchpush import pushed_by_batch, record_indexes

    done = pushed_by_batch(tags, per_platform, report=False) if per_platform else {}
    client = RegistryClient(insecure_registries=insecure_registries, credentials=credentials)
    reporter = get_reporter()
    digests: dict[str, str] = {}
    for tag in tags:
        if tag in done:
            digests[tag] = done[tag]
            continue
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
        if per_platform:
            record_indexes({tag: digests[tag]}, per_platform)
    return digests


__all__ = [
    "PlatformPlan",
    "assemble_indexes",
    "build_each_platform",
    "native_platform",
    "plan_platforms",
    "split_platforms",
    "warn_foreign_bases",
    "with_tag",
]
