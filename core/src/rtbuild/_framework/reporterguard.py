"""A reporter that raises (a websocket that closed, a full queue) stops the build with an
error that names it, instead of its own exception surfacing from inside a builder (or a
builder's wrapper of it, blamed on the builder)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rtbuild._framework.progress import Reporter, _current, get_reporter
from rtbuild.errors import AgentRuntimeBuildError


class ReporterFailed(AgentRuntimeBuildError):
    """The caller's reporter raised; its exception is the ``__cause__``."""


class GuardedReporter(Reporter):
    """Forwards to ``inner`` until it raises once; after that it drops everything, so the
    clean-up that runs while the error unwinds (stopping the engine, ``build_failed``
    hooks) is not cut short by the same reporter again."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.failure: ReporterFailed | None = None

    def line(self, text: str, *, source: str = "build") -> None:
        if self.failure is None:
            try:
                self.inner.line(text, source=source)
            except Exception as exc:
                raise self._failed(exc, "line") from exc

    def event(self, kind: str, **fields: Any) -> None:
        if self.failure is None:
            try:
                self.inner.event(kind, **fields)
            except Exception as exc:
                raise self._failed(exc, f"{kind!r} event") from exc

    def close(self) -> None:
        """The inner reporter belongs to whoever installed it: left open."""

    def _failed(self, exc: Exception, what: str) -> ReporterFailed:
        name = f"{type(self.inner).__module__}.{type(self.inner).__qualname__}"
        self.failure = ReporterFailed(
            f"the progress reporter {name} raised {type(exc).__name__} on a {what}: {exc}; the build was stopped",
            step=f"report a {what}",
            hint="a Reporter's line() and event() must not raise: catch what its sink raises"
            " (a closed connection, a full queue) inside the reporter, and drop or buffer the output there",
            blame=f"reporter {name}",
        )
        self.failure.__cause__ = exc
        return self.failure


@contextlib.contextmanager
def guarded_reporter() -> Iterator[Reporter]:
    """Guard the current reporter for the block; the error leaving it becomes the reporter's
    failure when the reporter failed (whatever a builder made of the exception it got).
    The library's silent default is left as it is: it cannot raise, and plugins ask
    ``type(get_reporter()) is Reporter`` to learn that nothing shows their events."""
    inner = get_reporter()
    if type(inner) is Reporter:
        yield inner
        return
    guard = GuardedReporter(inner)
    token = _current.set(guard)
    try:
        yield guard
    except Exception as exc:
        if guard.failure is not None and exc is not guard.failure:
            raise guard.failure from guard.failure.__cause__  # the reporter's own exception
        raise
    finally:
        _current.reset(token)


__all__ = ["GuardedReporter", "ReporterFailed", "guarded_reporter"]
