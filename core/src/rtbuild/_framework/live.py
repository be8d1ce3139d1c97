"""A live progress display for TTYs, built on rich (imported only when a TTY asks for it).

One header line: a spinner, the current step (``step`` events), a step counter where the
engine tells it (``[2/5]``), and the elapsed time; below it the last few log lines, without
the digest-only noise of layer transfers (``#7 sha256:... 1.2MB / 3.4MB``).
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from rtbuild._framework.progress import Reporter, warning_text

#: Lines that say nothing but "a blob with this digest is moving": hidden from the window.
_NOISE = re.compile(
    r"^(?:#\d+\s+)?(?:(?:sha256:)?[0-9a-f]{12,}\b[^A-Za-z]*(?:done|extracting|[0-9.]+\s*[kMG]?B\b.*)?"
    r"|(?:extracting|resolve|exporting layers?|writing image|naming to)?\s*sha256:[0-9a-f]{12,}.*)$",
    re.IGNORECASE,
)
#: ``[2/5]`` in a step name or a BuildKit line: the step counter.
_COUNTER = re.compile(r"\[\s*(\d+)\s*/\s*(\d+)\s*\]")


def is_noise(line: str) -> bool:
    """Whether ``line`` carries only a digest (and transfer progress)."""
    return bool(_NOISE.match(line.strip()))


class LiveReporter(Reporter):
    """Shows a spinner, the current step, the step counter, elapsed time and the last lines."""

    def __init__(self, stream: TextIO | None = None, window: int = 8) -> None:
        self._console = Console(file=stream, stderr=stream is None, highlight=False)
        self._lines: deque[str] = deque(maxlen=window)
        self._status = "starting"
        self._step: str | None = None
        self._counter: tuple[int, int] | None = None
        self._steps_seen = 0
        self._last_line = ""
        self._started = time.monotonic()
        self._spinner = Spinner("dots", style="cyan")
        self._live = Live(self, console=self._console, refresh_per_second=8, transient=True)
        self._live.start()

    # rich calls this on every refresh, so the spinner and the elapsed time move.
    def __rich__(self) -> RenderableType:
        return Group(self.header(), *(Text(f"  {line[:200]}", style="dim") for line in self._lines))

    def header(self) -> Text:
        """The status line (without the spinner frame when rendered as plain text)."""
        text = Text()
        frame = self._spinner.render(time.monotonic())
        if isinstance(frame, Text):
            text.append_text(frame)
            text.append(" ")
        text.append(f"rtbuild: {self._status}", style="bold")
        if self._step:
            counter = f"step {self._counter[0]}/{self._counter[1]}" if self._counter else f"step {self._steps_seen}"
            text.append(f"  {counter}: {self._step[:120]}")
        text.append(f"  {time.monotonic() - self._started:.1f}s", style="dim")
        return text

    def line(self, text: str, *, source: str = "build") -> None:
        self._last_line = text
        if not is_noise(text):
            self._lines.append(text)
        self._live.refresh()

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "warning" and fields.get("message"):
            # Printed above the display, to stay: as the status line, the next event hid it.
            self._console.print(warning_text(fields), markup=False, highlight=False)
            return
        if kind == "step" and fields.get("step"):
            step = str(fields["step"])
            self._steps_seen += 1
            self._step = step
            index, total = fields.get("index"), fields.get("total")
            match = _COUNTER.search(step) or _COUNTER.search(self._last_line)
            if isinstance(index, int) and isinstance(total, int):
                self._counter = (index, total)
            elif match:
                self._counter = (int(match.group(1)), int(match.group(2)))
            else:
                self._counter = None
        message = fields.get("message")
        if message:
            self._status = str(message)
        if kind in ("build_started", "build_finished"):
            self._step, self._counter, self._steps_seen = None, None, 0
            if kind == "build_started":
                self._started = time.monotonic()
        self._live.refresh()

    def close(self) -> None:
        self._live.stop()
        if self._status and self._status != "starting":
            self._console.print(f"rtbuild: {self._status}")


__all__ = ["LiveReporter", "is_noise"]
