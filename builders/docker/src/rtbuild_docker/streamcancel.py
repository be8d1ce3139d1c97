"""A pull or push stream that Ctrl-C/SIGTERM ends from another thread (``build-many``).

``build-many`` pushes in worker threads, which never see the main thread's interrupt: the
batch calls the cancel callbacks (:func:`rtbuild.on_cancel`) and then waits for its workers.
A worker reading an engine's push stream went on reading until the push finished, or, on
a registry that stopped taking the upload, until ``push_stall_timeout`` (two minutes by
default) before rtbuild could exit. The callback shuts the stream's socket down, which
wakes the blocked read at once (``close()`` from another thread does not), and the engine,
seeing the connection go, cancels the push as it does when the stall bound closes it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from rtbuild import on_cancel
from rtbuild.errors import AgentRuntimeBuildError, PushError, RegistryError

T = TypeVar("T")


class EngineCallStopped(AgentRuntimeBuildError):
    """An engine call that Ctrl-C/SIGTERM in build-many stopped waiting for (:func:`until_cancelled`)."""


class StreamCancel:
    """Registered with :func:`rtbuild.on_cancel` around one engine pull or push."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._response: Any = None
        self.fired = False

    def fire(self) -> None:
        """The cancel callback (any thread): sever the stream if it is open, else mark it."""
        with self._lock:
            self.fired = True
            response = self._response
        if response is not None:
            sever(response)

    def watch(self, response: Any) -> None:
        """The stream to sever; severed at once when the run was cancelled already."""
        with self._lock:
            self._response = response
            fired = self.fired
        if fired:
            sever(response)


def sever(response: Any) -> None:
    """Shut down the socket under a streamed ``requests`` response, from any thread."""
    sock = None
    with contextlib.suppress(AttributeError):
        sock = response.raw._fp.fp.raw._sock  # urllib3 -> http.client -> BufferedReader -> SocketIO
    if hasattr(sock, "shutdown"):
        _shut(sock)
        return
    with contextlib.suppress(Exception):  # another transport (ssh): closing is the best there is
        response.close()


def _shut(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(2)  # SHUT_RDWR (the socket module's import costs a no-op build 3.5 ms)


@contextlib.contextmanager
def shut_on_cancel(sock: Any) -> Iterator[None]:
    """While inside, Ctrl-C/SIGTERM in build-many shuts ``sock`` down: a worker blocked reading
    an engine that took the connection and never answers returns at once (it waited the
    whole 30 s timeout, holding rtbuild's exit)."""
    unregister = on_cancel(lambda: _shut(sock))
    try:
        yield
    finally:
        unregister()


def until_cancelled(host: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` (a docker SDK request), whose wait Ctrl-C/SIGTERM in build-many ends with
    :class:`EngineCallStopped`. The SDK's socket is out of reach while it connects and asks
    (a worker waited the SDK's whole 60 s on an engine that took the connection and never
    answered): the call runs in a daemon thread, left to its own timeout once abandoned."""
    box: list[tuple[bool, Any]] = []
    wake = threading.Event()

    def run() -> None:
        try:
            box.append((True, call(*args, **kwargs)))
        except BaseException as exc:  # handed to the caller's thread
            box.append((False, exc))
        finally:
            wake.set()

    unregister = on_cancel(wake.set)  # a cancelled run: set at once, the call is not made
    try:
        if not wake.is_set():
            threading.Thread(target=run, name="rtbuild-engine-call", daemon=True).start()
            wake.wait()
    finally:
        unregister()
    if not box:
        raise EngineCallStopped(
            f"the wait for the Docker engine at {host} was stopped by the interrupt (Ctrl-C or SIGTERM)",
            step="connect to engine",
            hint="run again once the engine answers (`docker version` says whether it does)",
        )
    ok, value = box[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def interrupted(action: str, image: str, tail: list[str]) -> AgentRuntimeBuildError:
    """The error of a pull or push (``action``) that an interrupt stopped."""
    if action == "push":
        return PushError(
            f"the push of {image} was stopped by the interrupt (Ctrl-C or SIGTERM); the registry may hold"
            " some of its layers, not the tag",
            step="push",
            log_tail=tail,
            hint="run again: the image built is reused and pushed",
        )
    return RegistryError(
        f"the pull of {image} was stopped by the interrupt (Ctrl-C or SIGTERM)",
        step="pull image",
        log_tail=tail,
        hint="run again to pull it",
    )


__all__ = [
    "EngineCallStopped",
    "StreamCancel",
    "interrupted",
    "on_cancel",
    "sever",
    "shut_on_cancel",
    "until_cancelled",
]
