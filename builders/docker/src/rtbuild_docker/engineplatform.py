"""The automatic platform ARGs a Dockerfile's images name, resolved from the engine's platform.

BuildKit fills ``TARGETPLATFORM`` & co. (for ``--platform``, else for the engine's own
platform) and ``BUILDPLATFORM`` & co. (the engine's) itself, in ``FROM`` lines also without
an ``ARG`` line: newer engines build ``ARG TARGETARCH`` + ``FROM base:${TARGETARCH}``
without ``--platform``. Docker 20.10 leaves such a declared ARG empty ('failed to parse
stage name "base:"'), and rtbuild's no-op skip resolved them empty (a 400 at 'inspect
image base:', before the engine ran). When an image the Dockerfile names uses one that no
build arg or default sets (:attr:`rtbuild.enginekit.Analysis.engine_filled`), it is
resolved from the engine's platform (its ``/version``, read once per builder) and passed
as a build arg: the engine builds the same base on 20.10 and on newer engines, the skip
reads that base, and the value is an input of the digest (never stale). A Dockerfile whose
images name none of them builds and hashes exactly as before.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from rtbuild.errors import AgentRuntimeBuildError

from .engine import EngineAPI, answer_error

if TYPE_CHECKING:
    from .builder import DockerBuilder
    from .spec import BuildSpec

#: Any mention at all: a Dockerfile without one is never analysed for them.
_MENTIONED = re.compile(r"(?:TARGET|BUILD)(?:PLATFORM|OS|ARCH|VARIANT)")


def engine_platform(api: EngineAPI) -> str:
    """The engine's own platform, ``os/arch`` (``GET /version``: ``Os``, ``Arch``)."""
    status, data = api.call("GET", "/version")
    if status != 200 or not isinstance(data, dict):
        raise answer_error(api.host, status, data, "read engine platform")
    os_name, arch = data.get("Os"), data.get("Arch")
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        raise AgentRuntimeBuildError(
            f"the engine at {api.host} does not say its platform (GET /version has no Os/Arch)",
            step="read engine platform",
            hint="give --platform, or the automatic platform ARGs the Dockerfile names as --build-arg",
        )
    return f"{os_name}/{arch}"


def builder_platform(builder: DockerBuilder) -> str:
    """:func:`engine_platform` of the builder's engine, asked once and kept with the builder."""
    if builder._engine_platform is None:
        builder._engine_platform = engine_platform(EngineAPI(builder.docker_host))
    return builder._engine_platform


def with_engine_args(builder: DockerBuilder, spec: BuildSpec, dockerfile: str) -> BuildSpec:
    """``spec`` with the automatic platform ARGs its Dockerfile's images name unset as build
    args, from ``--platform`` (TARGET*) and the engine's platform; ``spec`` itself when
    there are none (every Dockerfile that built before), or for a Dockerfile on stdin."""
    if dockerfile == "-":
        return spec
    from rtbuild.enginekit import analyse_cached, platform_args

    from .inputs import read_text

    text = read_text(dockerfile)
    if not _MENTIONED.search(text):
        return spec
    names = analyse_cached(text, spec.build_args, spec.platform).engine_filled
    if not names:
        return spec
    engine = builder_platform(builder)
    values = platform_args(spec.platform or engine, build=engine)
    given = {name: values[name] for name in names if name in values}
    return dataclasses.replace(spec, build_args={**given, **spec.build_args})


__all__ = ["builder_platform", "engine_platform", "with_engine_args"]
