"""The docker backend's hookimpls: the ``build`` hook, with the request's fields kept apart.

The core's default ``build`` hook can only hand a builder CLI-style entries; this one
gives DockerBuilder the structured request (build args, labels, target, force) so the
no-op skip can tell the inputs apart, and reports ``cached`` and the build's details.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtbuild.markers import hookimpl

if TYPE_CHECKING:
    from rtbuild.builder import BuildRequest, BuildResult, RuntimeBuilder


@hookimpl
def build(request: BuildRequest, builder: RuntimeBuilder) -> BuildResult | None:
    from rtbuild.builder import BuildResult

    from .builder import BuildSpec, DockerBuilder

    if not isinstance(builder, DockerBuilder):
        return None
    target = request.data.get("target")
    spec = BuildSpec(
        path=request.path,
        tags=list(request.tags),
        platform=request.platform,
        build_args=dict(request.build_args),
        labels=dict(request.labels),
        target=str(target) if target else None,
        extra_build_args=list(request.extra_build_args),
        force=bool(request.data.get("force")),
    )
    outcome = builder.run(spec)
    request.data["cached"] = outcome.cached
    return BuildResult(
        image=outcome.image,
        tags=outcome.tags,
        builder=builder.name or "docker",
        duration_s=outcome.duration_s,
        cached=outcome.cached,
        details=outcome.details(),
    )
