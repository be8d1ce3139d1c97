"""rtbuild-docker: the Docker backend for rtbuild (BuildKit builds, no-op skip, registries)."""

from __future__ import annotations

from .builder import BuildOutcome, BuildSpec, DockerBuilder

__all__ = ["BuildOutcome", "BuildSpec", "DockerBuilder"]
