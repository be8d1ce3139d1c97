"""Reporters: plain lines, JSON events and the live TTY display all carry what builds report."""

from __future__ import annotations

import io
import json

from rtbuild._framework.display import make_reporter
from rtbuild._framework.live import LiveReporter
from rtbuild._framework.progress import JsonReporter, PlainReporter, Reporter, get_reporter, use_reporter


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
    quiet = make_reporter("quiet", io.StringIO())
    assert type(quiet) is Reporter


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


def test_use_reporter_scopes_the_current_reporter() -> None:
    outer = get_reporter()
    stream = io.StringIO()
    with use_reporter(PlainReporter(stream)) as inner:
        assert get_reporter() is inner
        get_reporter().line("inside")
    assert get_reporter() is outer
    assert stream.getvalue() == "inside\n"
