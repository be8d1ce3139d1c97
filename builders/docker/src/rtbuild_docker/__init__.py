"""rtbuild-docker: the Docker backend for rtbuild (BuildKit builds, no-op skip, registries)."""

from __future__ import annotations

from typing import Any

from .builder import DockerBuilder


def __getattr__(name: str) -> Any:
    # The build spec types load with the first build, not with the package.
    if name in ("BuildOutcome", "BuildSpec"):
        from . import spec

        return getattr(spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BuildOutcome", "BuildSpec", "DockerBuilder"]
