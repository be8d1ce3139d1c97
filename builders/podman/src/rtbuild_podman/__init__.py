"""rtbuild-podman: the Podman backend for rtbuild (daemonless builds, no-op skip, registries,
multi-platform images under QEMU)."""

from __future__ import annotations

from .builder import PodmanBuilder

__all__ = ["PodmanBuilder"]
