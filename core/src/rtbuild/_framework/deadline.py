"""The build deadline (``build_timeout``): set by the pipeline around the build hook, read
by :func:`rtbuild.enginekit.run_build`, which stops the engine build when it passes.

A context variable, so concurrent builds (``build-many`` threads) each have their own.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

#: (monotonic deadline, the configured seconds) of the build running in this context.
_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("rtbuild_deadline", default=None)


@contextlib.contextmanager
def build_deadline(seconds: float | None) -> Iterator[None]:
    """Builds started inside may run until ``seconds`` from now (``None``: no bound)."""
    token = _DEADLINE.set((time.monotonic() + seconds, seconds) if seconds is not None else None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> tuple[float, float] | None:
    """(monotonic deadline, configured seconds) of the build in this context, or ``None``."""
    return _DEADLINE.get()


__all__ = ["build_deadline", "current_deadline"]
