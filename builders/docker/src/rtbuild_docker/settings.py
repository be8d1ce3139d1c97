"""``[builders.docker]``: the Docker builder's configuration table (docs/builders/docker.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rtbuild import setting
from rtbuild.enginekit import masked_repr

#: ``buildkit`` values (how :func:`rtbuild_docker.buildkit.choose_client` picks a client).
MODES = ("auto", "buildx", "env", "legacy")
#: Platforms BuildKit builds here (QEMU emulation for the foreign ones).
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x", "linux/riscv64")
PROGRESS_MODES = ("plain", "none")


def _not_a_file(path: str | None) -> str | None:
    """A log dir that exists as something else is a configuration error (exit 2, before any work)."""
    if path and os.path.exists(path) and not os.path.isdir(path):
        return f"{path!r} exists and is not a directory"
    return None


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be more than 0"


def _registries(items: list[str]) -> str | None:
    from rtbuild.oci import insecure_registries_problem  # the core's own check ("reg-a reg-b" is no registry)

    return insecure_registries_problem(items)


@dataclass(frozen=True)
class DockerSettings:
    """``[builders.docker]`` (docs/builders/docker.md)."""

    docker_cli: str | None = setting(None, help="the docker client to run (default: found on PATH)")
    docker_host: str | None = setting(None, help="the engine (default: DOCKER_HOST, else the local socket)")
    buildkit: str = setting("auto", choices=MODES)
    log_dir: str | None = setting(None, check=lambda v: _not_a_file(v), path=True, help="where build logs go")
    progress: str = setting("plain", choices=PROGRESS_MODES)
    skip_unchanged: bool = setting(True)
    insecure_registries: list[str] = setting(default_factory=list, check=lambda v: _registries(v))
    log_keep: int = setting(50, check=lambda v: None if v >= 0 else "must be 0 or more", help="build logs kept")
    log_max_age_days: float = setting(
        30.0, check=lambda v: None if v >= 0 else "must be 0 or more", help="build logs older than this are removed"
    )
    # Defaults as images.PUSH_TIMEOUT_S / PUSH_STALL_S (not imported: images.py is heavier).
    push_timeout: float = setting(1800.0, check=lambda v: _positive(v), help="seconds a push may take in all")
    push_stall_timeout: float = setting(
        120.0, check=lambda v: _positive(v), help="seconds a push may report no progress"
    )

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr


__all__ = ["MODES", "PROGRESS_MODES", "DockerSettings"]
