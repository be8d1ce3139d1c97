"""Fixtures of the Podman and multi-platform suites (see _podman_support)."""

from _podman_support import _prune_podman_builds, builder, names, podman_cli, qemu

__all__ = ["_prune_podman_builds", "builder", "names", "podman_cli", "qemu"]
