"""BuildKit's automatic platform ARGs: ``TARGETPLATFORM`` & co. and ``BUILDPLATFORM`` & co.

BuildKit defines them in the global scope, so a ``FROM`` line may use them without an
``ARG`` line (``FROM --platform=$BUILDPLATFORM ...``, ``FROM base:${TARGETARCH}``), and a
declared ``ARG TARGETARCH`` without a default keeps the engine's value. Docker 20.10's
built-in frontend gives such a declared ARG an empty value unless it is a build arg.
"""

from __future__ import annotations

TARGET_ARGS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT")
BUILD_ARGS = ("BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")
#: Every ARG the engine fills itself from the target and the build platform.
AUTOMATIC_ARGS = frozenset(TARGET_ARGS + BUILD_ARGS)


def _args(names: tuple[str, str, str, str], platform: str | None) -> dict[str, str]:
    if not platform or "," in platform:
        return {}
    parts = platform.strip().split("/")
    if len(parts) < 2:
        return {}
    return dict(zip(names, (platform.strip(), parts[0], parts[1], parts[2] if len(parts) > 2 else ""), strict=True))


def platform_args(platform: str | None, build: str | None = None) -> dict[str, str]:
    """BuildKit's automatic platform ARGs (``TARGETPLATFORM``, ``TARGETOS``, ``TARGETARCH``,
    ``TARGETVARIANT``) for one ``os/arch[/variant]`` platform; ``{}`` for none. With
    ``build`` (the engine's own platform), ``BUILDPLATFORM``, ``BUILDOS``, ``BUILDARCH`` and
    ``BUILDVARIANT`` too.

    Docker 20.10's built-in frontend leaves them empty in ``FROM`` lines unless given as
    build args, so engines that need it pass them explicitly, and the digest's view of a
    ``FROM base:${TARGETARCH}`` resolves the way the engine will.
    """
    return {**_args(TARGET_ARGS, platform), **_args(BUILD_ARGS, build)}


__all__ = ["AUTOMATIC_ARGS", "BUILD_ARGS", "TARGET_ARGS", "platform_args"]
