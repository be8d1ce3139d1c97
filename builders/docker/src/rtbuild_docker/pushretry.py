"""A push the registry turns away with 429 (too many requests) is tried again after a pause.

The engine gives up on a push at the registry's first 429 (dockerd 20.10 retries 5xx and
dropped connections, not this), and it keeps the registry's ``Retry-After`` to itself. A
platform pushing many images at once (``build-many -j 4`` to a registry with a request
quota) had builds fail at once with the generic hint "check the registry accepts pushes".
rtbuild waits and pushes again, a few times, with a warning each time; a push still
refused then says the registry limits requests, with what to do about it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from rtbuild import get_reporter, on_cancel
from rtbuild.errors import PushError

from .streamcancel import interrupted

T = TypeVar("T")
#: How the engine words a registry's 429 answer.
_RATE_LIMITED = ("toomanyrequests", "too many requests")
#: Pauses before each new attempt (3 more, over about 100 s). Tests make them short.
BACKOFF_S: tuple[float, ...] = (10.0, 30.0, 60.0)


def rate_limited(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _RATE_LIMITED)


def push_with_backoff(push: Callable[[], T], image: str) -> T:
    """``push()`` of ``image``, again after each pause of :data:`BACKOFF_S` while its registry answers 429."""
    from rtbuild.oci import parse_reference

    registry = parse_reference(image).registry
    pauses = BACKOFF_S
    for attempt in range(len(pauses) + 1):
        try:
            return push()
        except PushError as exc:
            if not rate_limited(exc.message):
                raise
            if attempt == len(pauses):
                exc.message = f"{exc.message} (refused {attempt + 1} times, over {sum(pauses):g} s)"
                exc.hint = (
                    f"the registry {registry} limits how many requests it takes (HTTP 429): push again later, push"
                    " fewer images at once (build-many --jobs), or raise the registry's quota for this account"
                )
                raise
            pause = pauses[attempt]
            get_reporter().event(
                "warning",
                image=image,
                message=f"registry {registry} turned the push of {image} away (429 too many requests): pushing"
                f" again in {pause:g} s (attempt {attempt + 2} of {len(pauses) + 1})",
            )
            _pause(pause, image, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def _pause(seconds: float, image: str, exc: PushError) -> None:
    """Sleep ``seconds``; Ctrl-C/SIGTERM in build-many (whose workers never see it) ends the wait."""
    woken = threading.Event()
    unregister = on_cancel(woken.set)
    try:
        if woken.wait(seconds):
            raise interrupted("push", image, list(exc.log_tail or [])) from None
    finally:
        unregister()


__all__ = ["BACKOFF_S", "push_with_backoff", "rate_limited"]
