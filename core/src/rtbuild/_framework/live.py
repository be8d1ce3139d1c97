"""A live progress display for TTYs, built on rich (imported only when a TTY asks for it)."""

from __future__ import annotations

from collections import deque
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from rtbuild._framework.progress import Reporter


class LiveReporter(Reporter):
    """Shows the current step and the last few log lines, redrawn in place."""

    def __init__(self, stream: TextIO | None = None, window: int = 8) -> None:
        self._console = Console(file=stream, stderr=stream is None)
        self._lines: deque[str] = deque(maxlen=window)
        self._status = "starting"
        self._live = Live(self._render(), console=self._console, refresh_per_second=8, transient=True)
        self._live.start()

    def _render(self) -> Text:
        text = Text(f"rtbuild: {self._status}\n", style="bold")
        for line in self._lines:
            text.append(f"  {line[:200]}\n", style="dim")
        return text

    def line(self, text: str, *, source: str = "build") -> None:
        self._lines.append(text)
        self._live.update(self._render())

    def event(self, kind: str, **fields: Any) -> None:
        message = fields.get("message")
        if message:
            self._status = str(message)
            self._live.update(self._render())

    def close(self) -> None:
        self._live.stop()
        if self._status and self._status != "starting":
            self._console.print(f"rtbuild: {self._status}")
