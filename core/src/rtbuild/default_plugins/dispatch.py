"""Dispatch ``build`` and ``image_exists`` to the selected builder (called last)."""

from __future__ import annotations

from ..builder import BuildRequest, RuntimeBuilder
from ..markers import hookimpl


@hookimpl(trylast=True)
def build(request: BuildRequest, builder: RuntimeBuilder) -> str:
    # Builders that implement only the two abstract methods get the structured fields
    # as CLI-style entries, the only channel the v1 contract gives them.
    return builder.build(
        request.path,
        list(request.tags),
        platform=request.platform,
        extra_build_args=request.structured_args(),
    )


@hookimpl(trylast=True)
def image_exists(image_name: str, pull_from_repo: bool, builder: RuntimeBuilder) -> bool:
    return builder.image_exists(image_name, pull_from_repo=pull_from_repo)
