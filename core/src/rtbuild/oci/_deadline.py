"""An overall deadline for one registry request: httpx's timeouts apply per read, so a
registry that drips one byte every few seconds would otherwise keep a call alive forever."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rtbuild.errors import RegistryError

if TYPE_CHECKING:
    import httpx


def within(deadline: float, call: Callable[[], httpx.Response], url: str, abort: Callable[[], None]) -> httpx.Response:
    """``call()``, or a RegistryError once ``deadline`` seconds passed (the request runs in a
    daemon thread; on expiry its client is closed so the connection is dropped)."""
    import threading
    import time

    import httpx

    from rtbuild._framework.interrupts import cancellable, cancelled, raise_if_cancelled

    box: list[Any] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:
            box.append(exc)

    worker = threading.Thread(target=run, name="rtbuild-registry", daemon=True)
    worker.start()
    if cancellable():  # a build-many worker: Ctrl-C/SIGTERM ends the wait (it waited the whole deadline)
        ends = time.monotonic() + deadline
        while worker.is_alive() and time.monotonic() < ends and not cancelled():
            worker.join(0.1)
        if worker.is_alive() and cancelled():
            with contextlib.suppress(Exception):
                abort()
            raise_if_cancelled()
    else:
        worker.join(deadline)
    if worker.is_alive():
        with contextlib.suppress(Exception):
            abort()
        host = httpx.URL(url).netloc.decode()
        raise RegistryError(
            f"registry {host} did not answer {url} within {deadline:g}s",
            step="query registry",
            hint=f"the registry {host} is overloaded or stuck; retry later",
        )
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[no-any-return]


def retry_after(response: httpx.Response, left: float) -> float | None:
    """How long to wait before asking again: a 429 answer's ``Retry-After`` in seconds, when
    given and when the request's deadline (``left`` seconds away) still has room after it
    for the answer; else ``None`` (the answer stands). An HTTP-date is not read: ``None``."""
    if response.status_code != 429:
        return None
    try:
        pause = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return pause if 0 <= pause <= left - 2.0 else None


__all__ = ["retry_after", "within"]
