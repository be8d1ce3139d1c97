"""Where build progress goes: plain lines, JSON events, or a live display on a TTY.

The CLI picks a reporter with :func:`use_reporter`; builders and plugins call
:func:`get_reporter` and report lines and events without knowing the terminal.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO


class Reporter:
    """Base reporter: discards everything (the library default; the CLI installs another)."""

    def line(self, text: str, *, source: str = "build") -> None:
        """One line of build or pull output."""

    def event(self, kind: str, **fields: Any) -> None:
        """A structured event (``step``, ``cached``, ``pushed``, ...)."""

    def close(self) -> None:
        """Finish any live display."""


class PlainReporter(Reporter):
    """Plain lines on stderr: what logs and non-TTY terminals want."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def line(self, text: str, *, source: str = "build") -> None:
        print(text, file=self._stream or sys.stderr, flush=True)

    def event(self, kind: str, **fields: Any) -> None:
        message = fields.get("message")
        if not message and kind == "step" and fields.get("step"):
            index, total = fields.get("index"), fields.get("total")
            counter = f" {index}/{total}" if index is not None and total is not None else ""
            message = f"step{counter}: {fields['step']}"
            if fields.get("build"):  # one of build-many's concurrent builds: say which
                message = f"[{fields['build']}] {message}"
        if kind == "warning" and message:
            print(warning_text(fields), file=self._stream or sys.stderr, flush=True)
        elif message:
            print(f"rtbuild: {message}", file=self._stream or sys.stderr, flush=True)


def warning_text(fields: dict[str, Any]) -> str:
    """A ``warning`` event as every human-facing reporter shows it: ``warning: MESSAGE``
    (``warning: [BUILD] MESSAGE`` for one of build-many's concurrent builds)."""
    build = f"[{fields['build']}] " if fields.get("build") else ""
    return f"warning: {build}{fields.get('message')}"


class QuietReporter(PlainReporter):
    """``-q``: no progress, but warnings still reach stderr (a secret-looking build arg, an
    input that is ignored): quiet is not blind."""

    def line(self, text: str, *, source: str = "build") -> None:
        """No build output."""

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "warning":
            super().event(kind, **fields)


class JsonReporter(Reporter):
    """One JSON object per line on stderr; stdout stays the single result document."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def _emit(self, payload: dict[str, Any]) -> None:
        payload.setdefault("time", round(time.time(), 3))
        print(json.dumps(payload, default=str), file=self._stream or sys.stderr, flush=True)

    def line(self, text: str, *, source: str = "build") -> None:
        self._emit({"event": "log", "source": source, "line": text})

    def event(self, kind: str, **fields: Any) -> None:
        self._emit({"event": kind, **fields})


_current: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("rtbuild_reporter", default=None)
_SILENT = Reporter()


def get_reporter() -> Reporter:
    return _current.get() or _SILENT


@contextlib.contextmanager
def use_reporter(reporter: Reporter) -> Iterator[Reporter]:
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        reporter.close()
        _current.reset(token)


__all__ = ["JsonReporter", "PlainReporter", "QuietReporter", "Reporter", "get_reporter", "use_reporter", "warning_text"]
