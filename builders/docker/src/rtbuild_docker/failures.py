"""A failed docker build as an :mod:`rtbuild.errors` error (the parsing is the core's
:func:`rtbuild.enginekit.build_error`; this adds Docker's "engine unreachable" error)."""

from __future__ import annotations

from collections.abc import Sequence

from rtbuild.enginekit import build_error as _build_error
from rtbuild.errors import AgentRuntimeBuildError

from .engine import unreachable


def build_error(lines: Sequence[str], returncode: int, *, log_path: str | None, host: str) -> AgentRuntimeBuildError:
    """The error for a build that exited with ``returncode``; ``lines`` is the log's end."""
    return _build_error(
        lines, returncode, log_path=log_path, engine="docker", engine_down=lambda detail: unreachable(host, detail)
    )


__all__ = ["build_error"]
