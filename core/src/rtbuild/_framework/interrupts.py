"""Interrupts: SIGTERM and SIGHUP end rtbuild the way Ctrl-C does, and cancel what runs.

Python's default for SIGTERM (what ``timeout``, CI cancellation and ``kill`` send) and
SIGHUP is to die on the spot: no ``finally`` runs, so a build's engine process, its temp
dir and its lock would be left to chance. :func:`install` turns both into
:class:`Terminated` (a ``KeyboardInterrupt``) in the main thread, so the same clean-up
runs as for Ctrl-C. Builders register a callback with :func:`on_cancel` to stop work
running in *other* threads (``build-many``), which never see the main thread's interrupt.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType

_lock = threading.Lock()
_callbacks: dict[int, Callable[[], None]] = {}
_next = 0


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def install() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` (main thread only; else no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _handler)


def on_cancel(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` when the run is cancelled (Ctrl-C, SIGTERM); returns an unregister."""
    global _next
    with _lock:
        key = _next
        _next += 1
        _callbacks[key] = callback

    def unregister() -> None:
        with _lock:
            _callbacks.pop(key, None)

    return unregister


def cancel_all() -> None:
    """Call every registered cancel callback once (errors in one do not stop the others)."""
    with _lock:
        callbacks = list(_callbacks.values())
    for callback in callbacks:
        with contextlib.suppress(Exception):
            callback()


__all__ = ["Terminated", "cancel_all", "install", "on_cancel"]
