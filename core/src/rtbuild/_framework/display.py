"""Choosing a reporter for the terminal: plain lines, JSON events, or the live display.

Kept apart from :mod:`progress` so that the live display (which builds on
:class:`~rtbuild._framework.progress.Reporter`) is imported only from here, lazily.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rtbuild._framework.progress import JsonReporter, PlainReporter, QuietReporter, Reporter


def make_reporter(mode: str, stream: TextIO | None = None) -> Reporter:
    """``json``, ``plain``, ``quiet`` (warnings only), ``silent`` (nothing: ``--json -q``)
    or ``auto`` (a live display when stderr is a TTY)."""
    if mode == "json":
        return JsonReporter(stream)
    if mode == "quiet":
        return QuietReporter(stream)
    if mode == "silent":
        return Reporter()
    if mode == "auto" and (stream or sys.stderr).isatty():
        try:
            from rtbuild._framework.live import LiveReporter  # rich is imported only here
        except ImportError:
            return PlainReporter(stream)
        return LiveReporter(stream)
    return PlainReporter(stream)


__all__ = ["make_reporter"]
