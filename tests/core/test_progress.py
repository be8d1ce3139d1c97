"""Reporters: plain lines, JSON events and the live TTY display all carry what builds report."""

from __future__ import annotations

import io
import json

from rtbuild._framework.display import make_reporter
from rtbuild._framework.live import LiveReporter
from rtbuild._framework.progress import (
    JsonReporter,
    PlainReporter,
    QuietReporter,
    Reporter,
    get_reporter,
    use_reporter,
)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_reporter_picks_by_mode_and_terminal() -> None:
    assert isinstance(make_reporter("json", io.StringIO()), JsonReporter)
    assert isinstance(make_reporter("plain", _Tty()), PlainReporter)
    assert isinstance(make_reporter("auto", io.StringIO()), PlainReporter)  # not a TTY
    live = make_reporter("auto", _Tty())
    assert isinstance(live, LiveReporter)
    live.close()
    assert isinstance(make_reporter("quiet", io.StringIO()), QuietReporter)  # warnings only
    assert type(make_reporter("silent", io.StringIO())) is Reporter  # --json -q


def test_json_reporter_writes_one_object_per_line() -> None:
    stream = io.StringIO()
    reporter = JsonReporter(stream)
    reporter.line("#1 [1/2] FROM busybox")
    reporter.event("cached", image="a:1", message="reusing a:1")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "log" and first["line"] == "#1 [1/2] FROM busybox"
    assert second["event"] == "cached" and second["image"] == "a:1" and "time" in second


def test_plain_reporter_prints_lines_and_event_messages() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream)
    reporter.line("step one")
    reporter.event("waiting")  # no message: nothing printed
    reporter.event("build_finished", message="built a:1 in 1.00s")
    assert stream.getvalue().splitlines() == ["step one", "rtbuild: built a:1 in 1.00s"]


def test_live_reporter_ends_with_the_last_status_line() -> None:
    stream = _Tty()
    reporter = LiveReporter(stream)
    reporter.line("#5 RUN make")
    reporter.event("build_finished", message="built a:1 in 2.00s")
    reporter.close()
    assert "rtbuild: built a:1 in 2.00s" in stream.getvalue()


def test_plain_reporter_shows_step_events() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream)
    reporter.event("step", step="RUN make")
    reporter.event("step", step="COPY . /app", index=3, total=4)
    assert stream.getvalue().splitlines() == ["rtbuild: step: RUN make", "rtbuild: step 3/4: COPY . /app"]


def test_live_reporter_shows_step_counter_elapsed_and_spinner_and_hides_digest_noise() -> None:
    from rtbuild._framework.live import is_noise

    stream = _Tty()
    reporter = LiveReporter(stream)
    reporter.event("build_started", message="building a:1")
    reporter.line("#6 [2/5] RUN make")
    reporter.event("step", step="RUN make")
    reporter.line("#6 sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1 1.05MB / 3.2MB 0.4s")
    reporter.line("#6 compiling main.c")
    header = reporter.header().plain
    assert "rtbuild: building a:1" in header and "step 2/5: RUN make" in header
    assert header.rstrip().endswith("s") and any(ch.isdigit() for ch in header.split()[-1])
    assert header[0] not in "r "  # a spinner frame leads the line
    assert list(reporter._lines) == ["#6 [2/5] RUN make", "#6 compiling main.c"]
    reporter.event("step", step="COPY . /app", index=3, total=5)
    assert "step 3/5: COPY . /app" in reporter.header().plain
    reporter.close()
    assert is_noise("#12 sha256:0123456789abcdef0123 done")
    assert is_noise("#9 writing image sha256:0123456789abcdef0123456789 done")
    assert not is_noise("#5 [3/3] RUN echo sha256 is fine")


def test_use_reporter_scopes_the_current_reporter() -> None:
    outer = get_reporter()
    stream = io.StringIO()
    with use_reporter(PlainReporter(stream)) as inner:
        assert get_reporter() is inner
        get_reporter().line("inside")
    assert get_reporter() is outer
    assert stream.getvalue() == "inside\n"
