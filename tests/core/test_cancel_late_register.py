"""A cancel callback registered after build-many's interrupt ran the callbacks still runs.

A worker checks that the run is not cancelled, then starts a push and registers the
callback that severs it. The batch's Ctrl-C/SIGTERM could land in between: it ran the
callbacks registered so far, the worker's was not one of them, and the push went on
until ``push_stall_timeout`` (120 s) before rtbuild could exit (seen in CI as 'build-many
was still pushing 60 s after the signal', under load, in 1 of a few runs).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from rtbuild import BuildRequest, Config
from rtbuild._framework.batch import requests_from, run_batch
from rtbuild._framework.interrupts import cancel_scope, on_cancel
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild.testing import FakeBuilder


def test_a_callback_registered_in_a_cancelled_run_runs_at_once() -> None:
    calls: list[str] = []
    with cancel_scope(threading.Event()) as event:
        unregister = on_cancel(lambda: calls.append("live"))
        assert calls == []  # not cancelled yet: nothing runs
        event.set()
        late = on_cancel(lambda: calls.append("late"))
        assert calls == ["late"]
        late()
        unregister()
    # Outside a cancellable run (a single build) registering runs nothing.
    unregister = on_cancel(lambda: calls.append("outside"))
    unregister()
    assert calls == ["late"]


def test_a_failing_late_callback_is_contained() -> None:
    def broken() -> None:
        raise RuntimeError("a backend's bug")

    with cancel_scope(threading.Event()) as event:
        event.set()
        on_cancel(broken)()  # as cancel_all does: the error stops nothing else


class LatePushBuilder(FakeBuilder):
    """Its push starts only once the batch has run its cancel callbacks, and waits to be
    stopped by its own callback, as a Docker push on a stalled registry waits."""

    def __init__(self) -> None:
        super().__init__()
        self.pushing = threading.Event()
        self.cancel_ran = threading.Event()
        self.stopped: bool | None = None

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        if "interrupt" in tags[0]:
            assert self.pushing.wait(30), "the other build never pushed"
            raise KeyboardInterrupt
        return super().build(path, tags, platform, extra_build_args)

    def push(self, tag: str) -> None:
        self.pushing.set()
        assert self.cancel_ran.wait(30), "the batch never ran its cancel callbacks"
        stop = threading.Event()
        unregister = on_cancel(stop.set)  # the window: cancel_all has come and gone
        try:
            # A guard, not a timing: with the fix the callback has run before this wait.
            self.stopped = stop.wait(10)
        finally:
            unregister()
        super().push(tag)


def test_a_push_registering_after_the_interrupt_is_stopped(
    tmp_path: Path, rtbuild_pm: RtbuildPluginManager, isolated_cache: Path
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    builder = LatePushBuilder()
    unregister = on_cancel(builder.cancel_ran.set)  # runs in cancel_all, before the push registers
    entries = requests_from(
        [
            BuildRequest(path=str(tmp_path / "a"), tags=["interrupt:1"]),
            BuildRequest(path=str(tmp_path / "b"), tags=["late:1"], push=True),
        ]
    )
    try:
        with pytest.raises(KeyboardInterrupt):
            run_batch(entries, jobs=2, config=Config(), pm=rtbuild_pm, builder=builder)
    finally:
        unregister()
    assert builder.stopped is True, "the push's cancel callback never ran: it waited for its stall bound"
