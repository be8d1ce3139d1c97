"""Stopping an engine client's build (Ctrl-C, SIGTERM, ``build_timeout``, a session's close).

The client gets SIGINT, then SIGTERM, then SIGKILL, each to its whole process group, with a
wait for it to exit between them: a client whose engine answers cancels the build there
and exits. One whose engine stopped answering (a frozen daemon: its socket still takes
connections, nothing answers) waits on that engine through SIGINT and SIGTERM alike, so the
escalation held rtbuild for 10 s more. With an :class:`EngineProbe` the engine is asked
once, right after a short grace: when it does not answer, the client is killed at once (a
cancel it cannot deliver is no cancel) and the caller says that the engine stopped answering.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: How long a stopped client gets to exit on SIGINT before its engine is asked whether it answers.
GRACE_S = 1.0
#: How long a stopped client gets to exit after SIGINT, then after SIGTERM, before the next signal.
SIGINT_WAIT_S = 5.0
SIGTERM_WAIT_S = 5.0


@dataclass(frozen=True)
class EngineProbe:
    """How :func:`stop_process_group` asks a build's engine whether it still answers.

    ``answers`` is a cheap check (a ping) bounded by its own short timeout, returning
    ``False`` when the engine does not answer in time; it must not give up because the run
    was cancelled (it runs during Ctrl-C). ``name`` names the engine in messages ("the Docker
    engine at unix:///var/run/docker.sock"); ``hint`` says what to check when it is silent.
    """

    name: str
    answers: Callable[[], bool]
    hint: str = "check that the engine runs and is not frozen or overloaded (its log says why)"


#: Builds running in this process (build-many runs several), with their engine's probe:
#: Ctrl-C stops them all.
_RUNNING: dict[subprocess.Popen[bytes], EngineProbe | None] = {}
_RUNNING_LOCK = threading.Lock()
#: Builds whose stop found their engine silent.
_SILENT: set[subprocess.Popen[bytes]] = set()


def _exited(proc: subprocess.Popen[bytes], wait: float) -> bool:
    try:
        proc.wait(timeout=max(wait, 0.0))
    except subprocess.TimeoutExpired:
        return False
    return True


def _answers(probe: EngineProbe) -> bool:
    try:
        return bool(probe.answers())
    except Exception:  # a probe that fails to ask cannot tell: the plain escalation runs
        return True


def stop_process_group(proc: subprocess.Popen[bytes], probe: EngineProbe | None = None) -> bool:
    """SIGINT then SIGTERM then SIGKILL to the build's process group; waits until it is gone.

    With ``probe``, a client still running :data:`GRACE_S` after SIGINT whose engine does not
    answer is killed at once. Returns whether that happened (the engine stopped answering)."""
    silent = False
    for sig, wait in ((signal.SIGINT, SIGINT_WAIT_S), (signal.SIGTERM, SIGTERM_WAIT_S), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        if sig == signal.SIGINT and probe is not None:
            started = time.monotonic()
            if _exited(proc, GRACE_S):
                break
            if not _answers(probe):
                silent = True
                with _RUNNING_LOCK:  # before the kill: the build's own thread reads it once the client is gone
                    _SILENT.add(proc)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                _exited(proc, 30.0)
                break
            wait -= time.monotonic() - started
        if _exited(proc, wait):
            break
    with contextlib.suppress(ProcessLookupError):  # stragglers left in the group
        os.killpg(proc.pid, signal.SIGKILL)
    return silent


def engine_went_silent(proc: subprocess.Popen[bytes]) -> bool:
    """Whether a stop of ``proc`` (from any thread) found its engine silent; forgets it."""
    with _RUNNING_LOCK:
        found = proc in _SILENT
        _SILENT.discard(proc)
    return found


def register(proc: subprocess.Popen[bytes], probe: EngineProbe | None) -> None:
    with _RUNNING_LOCK:
        _RUNNING[proc] = probe


def unregister(proc: subprocess.Popen[bytes]) -> None:
    with _RUNNING_LOCK:
        _RUNNING.pop(proc, None)
        _SILENT.discard(proc)


def stop_all() -> None:
    """Stop every build this process runs (build-many on Ctrl-C; safe from any thread),
    each from a thread of its own, and wait for them all: one frozen engine's builds
    stopping together take one probe's time, not one each."""
    with _RUNNING_LOCK:
        running = [(proc, probe) for proc, probe in _RUNNING.items() if proc.poll() is None]
    threads = [threading.Thread(target=stop_process_group, args=item, daemon=True) for item in running]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def stop_at(
    deadline: float, proc: subprocess.Popen[bytes], expired: threading.Event, probe: EngineProbe | None = None
) -> threading.Timer:
    """A timer that stops ``proc``'s process group at ``deadline`` (``time.monotonic()``)."""

    def expire() -> None:
        if proc.poll() is None:  # a build that just finished is not stopped
            expired.set()
            stop_process_group(proc, probe)

    # Clamped: a wait above about 292 years is refused (an OverflowError and a traceback from
    # the timer's thread for --build-timeout 1e10).
    timer = threading.Timer(min(max(deadline - time.monotonic(), 0.0), threading.TIMEOUT_MAX), expire)
    timer.daemon = True
    timer.name = "rtbuild-build-timeout"
    timer.start()
    return timer


def silent_engine_error(
    probe: EngineProbe, *, during: str, step: str | None, tail: list[str], log_path: str | None
) -> Exception:
    """The error for a build stopped (``during``: why) whose engine no longer answered."""
    from rtbuild.errors import EngineUnavailableError

    return EngineUnavailableError(
        f"{probe.name} stopped answering: the build was stopped ({during}) and its client killed, as the"
        " engine did not answer a ping" + (f"; last step {step}" if step else ""),
        step=f"build step {step}" if step else "build",
        log_tail=tail,
        log_path=log_path,
        hint=f"{probe.hint}; nothing was tagged, build again once it answers",
    )


__all__ = [
    "GRACE_S",
    "EngineProbe",
    "engine_went_silent",
    "register",
    "silent_engine_error",
    "stop_all",
    "stop_at",
    "stop_process_group",
    "unregister",
]
