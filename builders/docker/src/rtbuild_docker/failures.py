"""A failed docker build as an :mod:`rtbuild.errors` error (the parsing is the core's
:func:`rtbuild.enginekit.build_error`; this adds Docker's "engine unreachable" and "engine
went away" errors)."""

from __future__ import annotations

from collections.abc import Sequence

from rtbuild.enginekit import TAIL_LINES
from rtbuild.enginekit import build_error as _build_error
from rtbuild.errors import AgentRuntimeBuildError, EngineUnavailableError

from .engine import shown_host, unreachable

#: What the docker CLI prints when the daemon's connection drops in the middle of a build.
_WENT_AWAY = (
    "server did not provide an image ID",
    "error reading from server",
    "transport is closing",
    "connection reset by peer",
    "code = Unavailable",
    "unexpected EOF",
)


def _engine_answers(host: str) -> bool:
    from .engine import EngineAPI

    try:
        EngineAPI(host, timeout=5.0).ping()
    except EngineUnavailableError:
        return False
    return True


def build_error(lines: Sequence[str], returncode: int, *, log_path: str | None, host: str) -> AgentRuntimeBuildError:
    """The error for a build that exited with ``returncode``; ``lines`` is the log's end."""
    error = _build_error(
        lines, returncode, log_path=log_path, engine="docker", engine_down=lambda detail: unreachable(host, detail)
    )
    if isinstance(error, EngineUnavailableError):
        return error
    text = "\n".join(lines[-TAIL_LINES:])
    if any(marker in text for marker in _WENT_AWAY) and not _engine_answers(host):
        went = EngineUnavailableError(
            f"the Docker engine at {shown_host(host)} went away during the build (it no longer answers)",
            step=error.step or "build",
            log_tail=error.log_tail,
            log_path=log_path,
            hint="the daemon stopped or crashed mid-build: check its log (journalctl -u docker, or dockerd's"
            " output), start it again (`make engine` in this repo) and rebuild; nothing was tagged",
        )
        return went
    return error


__all__ = ["build_error"]
