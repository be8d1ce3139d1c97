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


def engine_answers(host: str) -> bool:
    """Whether the engine at ``host`` answers a ping within 5 s."""
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
    if not any(marker in text for marker in _WENT_AWAY):
        return error
    if not engine_answers(host):
        return EngineUnavailableError(
            f"the Docker engine at {shown_host(host)} went away during the build (it no longer answers)",
            step=error.step or "build",
            log_tail=error.log_tail,
            log_path=log_path,
            hint="the daemon stopped or crashed mid-build: check its log (journalctl -u docker, or dockerd's"
            " output), start it again (`make engine` in this repo) and rebuild; nothing was tagged",
        )
    # It answers again: restarted behind its socket (systemd's docker.socket), or a proxy or
    # ssh session between rtbuild and the engine closed the connection. The engine's words
    # ("server did not provide an image ID") said nothing of that. Only when the client's own
    # last word says so: a step's output may hold the same words (a Go tool's "unexpected EOF").
    last = next((line for line in reversed(lines) if line.strip()), "")
    if not any(marker in last for marker in _WENT_AWAY) or " failed with exit code " in error.message:
        return error
    return EngineUnavailableError(
        f"the connection to the Docker engine at {shown_host(host)} dropped during the build (the engine"
        " answers again now)",
        step=error.step or "build",
        log_tail=error.log_tail,
        log_path=log_path,
        hint="build again; nothing was tagged. If it repeats, check the daemon's log (was it restarted"
        " mid-build?) and whatever lies between rtbuild and the engine (a socket proxy, an ssh session)",
    )


def stream_broke(host: str, action: str, image: str, tail: list[str], detail: str) -> EngineUnavailableError:
    """The error for a pull or push (``action``) whose engine stream broke off after the engine
    had answered: the engine went away, or the connection to it dropped (it answers again).
    It read "cannot reach the Docker engine", step "connect to engine", with no log tail."""
    step = "push" if action == "push" else "pull image"
    if not engine_answers(host):
        return EngineUnavailableError(
            f"the Docker engine at {shown_host(host)} went away during the {action} of {image} (it no longer"
            f" answers): {detail}",
            step=step,
            log_tail=tail,
            hint=f"the daemon stopped or crashed mid-{action}: check its log (journalctl -u docker, or dockerd's"
            " output), start it again (`make engine` in this repo) and run again",
        )
    return EngineUnavailableError(
        f"the connection to the Docker engine at {shown_host(host)} dropped during the {action} of {image} (the"
        f" engine answers again now): {detail}",
        step=step,
        log_tail=tail,
        hint="run again; if it repeats, check the daemon's log (was it restarted?) and whatever lies between"
        " rtbuild and the engine (a socket proxy, an ssh session)",
    )


__all__ = ["build_error", "engine_answers", "stream_broke"]
