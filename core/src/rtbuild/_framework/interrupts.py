"""Interrupts: SIGTERM and SIGHUP end rtbuild the way Ctrl-C does, and cancel what runs.

Python's default for SIGTERM (what ``timeout``, CI cancellation and ``kill`` send) and
SIGHUP is to die on the spot: no ``finally`` runs, so a build's engine process, its temp
dir and its lock would be left to chance. :func:`install` turns both into
:class:`Terminated` (a ``KeyboardInterrupt``) in the main thread, so the same clean-up
runs as for Ctrl-C. Builders register a callback with :func:`on_cancel` to stop work
running in *other* threads (``build-many``), which never see the main thread's interrupt.

An interrupt that lands while Python finalises an object (a generator dropped mid-loop, a
``__del__``) is raised inside the finaliser, where Python prints it as "Exception ignored"
and carries on: the build would run to its end. :func:`install` also hooks
``sys.unraisablehook`` to deliver such an interrupt again, right after the finaliser.
"""

from __future__ import annotations

import _thread
import contextlib
import contextvars
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

_lock = threading.Lock()
#: Each callback with the cancel scope it was registered in (``None``: outside any).
_callbacks: dict[int, tuple[Callable[[], None], threading.Event | None]] = {}
_next = 0
_abandoned = False
#: How long after a swallowed interrupt it is sent again: the finaliser has long returned.
REDELIVER_AFTER_S = 0.01


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Cancelled(KeyboardInterrupt):
    """Raised in a worker thread whose run was cancelled (:func:`raise_if_cancelled`)."""


#: The event that says "this run was cancelled", for the threads working for it.
_scope: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("rtbuild_cancel", default=None)


@contextlib.contextmanager
def cancel_scope(event: threading.Event) -> Iterator[threading.Event]:
    """Code run in this context (and in copies of it: ``build-many``'s worker threads) is
    cancelled once ``event`` is set: lock waits give up, no engine build starts."""
    token = _scope.set(event)
    try:
        yield event
    finally:
        _scope.reset(token)


def cancellable() -> bool:
    """Whether this context belongs to a run that can be cancelled from another thread
    (blocking waits then poll :func:`raise_if_cancelled` instead of blocking for good)."""
    return _scope.get() is not None


def cancelled() -> bool:
    """Whether this context's run was cancelled."""
    event = _scope.get()
    return event is not None and event.is_set()


def raise_if_cancelled() -> None:
    """Raise :class:`Cancelled` when this context's run was cancelled."""
    if cancelled():
        raise Cancelled("cancelled")


def _handler(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


class _Redeliver:
    """``sys.unraisablehook`` that re-sends an interrupt a finaliser swallowed."""

    def __init__(self, previous: Callable[[sys.UnraisableHookArgs], object]) -> None:
        self.previous = previous

    def __call__(self, unraisable: sys.UnraisableHookArgs) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
            # Sent from another thread a moment later, so it lands after this hook and the
            # finaliser have returned (raised in here, it would be swallowed too), and as a
            # real signal to the main thread, so a blocking system call it sits in wakes up.
            # One that lands in a finaliser again comes back here and is sent again.
            signum = exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT)
            try:
                _thread.start_new_thread(_send_later, (threading.main_thread().ident, signum))
                return
            except RuntimeError:  # no new threads at interpreter shutdown: say what was lost
                pass
        self.previous(unraisable)


def _send_later(thread_id: int | None, signum: int) -> None:
    time.sleep(REDELIVER_AFTER_S)
    if thread_id is not None:
        with contextlib.suppress(OSError):  # the process is already on its way out
            signal.pthread_kill(thread_id, signum)


def install() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` (main thread only; else no-op),
    and re-deliver an interrupt that a finaliser swallowed."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _handler)
    if not isinstance(sys.unraisablehook, _Redeliver):
        sys.unraisablehook = _Redeliver(sys.unraisablehook)


def on_cancel(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` when the run is cancelled (Ctrl-C, SIGTERM); returns an unregister.

    Registered in a run that is cancelled already (a build-many worker that checked, then
    registered while the batch ran :func:`cancel_all`), ``callback`` runs at once, here: it
    would never run otherwise, and the push it was to stop held rtbuild's exit for
    ``push_stall_timeout``. A callback can so run twice (here and from :func:`cancel_all`):
    each must be idempotent. The batch sets its cancel scope's event before it calls
    :func:`cancel_all`, so one of the two always sees the other.
    """
    global _next
    with _lock:
        key = _next
        _next += 1
        _callbacks[key] = (callback, _scope.get())

    def unregister() -> None:
        with _lock:
            _callbacks.pop(key, None)

    if cancelled():
        with contextlib.suppress(Exception):  # as in cancel_all: a failing callback stops nothing else
            callback()
    return unregister


def abandon() -> None:
    """Say that rtbuild stopped waiting for threads that may still run (a second Ctrl-C or
    SIGTERM in ``build-many``): the process must end without joining them, or a wedged one
    would hold its exit for ever (:func:`abandoned`, read by the CLI as it exits)."""
    global _abandoned
    _abandoned = True


def abandoned() -> bool:
    """Whether :func:`abandon` was called in this process."""
    return _abandoned


def cancel_all(scope: threading.Event | None = None) -> None:
    """Call every registered cancel callback once (errors in one do not stop the others);
    with ``scope``, only those registered in that cancel scope (a ``BuildSession``'s close
    stops its own builds, not another session's)."""
    with _lock:
        callbacks = [callback for callback, where in _callbacks.values() if scope is None or where is scope]
    for callback in callbacks:
        with contextlib.suppress(Exception):
            callback()


__all__ = [
    "Cancelled",
    "Terminated",
    "abandon",
    "abandoned",
    "cancel_all",
    "cancel_scope",
    "cancellable",
    "cancelled",
    "install",
    "on_cancel",
    "raise_if_cancelled",
]
