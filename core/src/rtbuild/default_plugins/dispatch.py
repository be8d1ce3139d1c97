"""Dispatch ``build`` and ``image_exists`` to the selected builder (called last)."""

from __future__ import annotations

from rtbuild.builder import BuildRequest, BuildResult, RuntimeBuilder
from rtbuild.markers import hookimpl


@hookimpl(trylast=True)
def build(request: BuildRequest, builder: RuntimeBuilder) -> BuildResult:
    # The structured entry point: v2 builders override it, the base class adapts it to
    # a v1 ``build()`` with every field as a flag. Plugin filtering never changes this.
    return builder.build_request(request)


@hookimpl(trylast=True)
def image_exists(image_name: str, pull_from_repo: bool, builder: RuntimeBuilder) -> bool:
    return builder.image_exists(image_name, pull_from_repo=pull_from_repo)
