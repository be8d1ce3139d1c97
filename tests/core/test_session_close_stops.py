"""BuildSession.close() stops the calls still running in other threads, and
BuildSession.cancel(event) the calls given that event alone.

Before, a platform closing its session (or leaving ``with BuildSession()`` on Ctrl-C)
had no way to stop them: a running engine build went on to its end and tagged, a call
waiting for the tag's lock then started a whole new engine build after the close, and the
process could not exit before all of them finished (measured on Docker: a KeyboardInterrupt
3 s into eight 20 s builds exited after 23.6 s, every tag applied; now after 3.3 s, none).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import rtbuild
from rtbuild import BuildRequest, BuildResult, BuildSession, Config, RuntimeBuilder
from rtbuild.enginekit import run_build

#: Every test joins its threads at most this long: a hang guard, never a timing claim.
GUARD_S = 60


class SleepingBuilder(RuntimeBuilder):
    """Each build runs an engine-like process (through rtbuild.enginekit.run_build) that
    sleeps far longer than any test waits."""

    name = "sleeping"
    capabilities = rtbuild.BuilderCapabilities()

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.builds = 0
        self.lock = threading.Lock()

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        raise AssertionError("build_request is the entry point")

    def build_request(self, request: BuildRequest) -> BuildResult:
        with self.lock:
            self.builds += 1
        run = run_build(
            ["sh", "-c", "exec sleep 3600", request.path], env={}, log_path=None, on_started=self.started.release
        )
        if run.returncode != 0:
            raise rtbuild.BuildFailedError(f"the engine exited {run.returncode}", step="build")
        return BuildResult(request.tags[0], list(request.tags), self.name, 0.0)

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        return False


def _session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, builder: SleepingBuilder) -> BuildSession:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = Config(load_plugins=[])
    return BuildSession(config, pm=rtbuild.get_plugin_manager(config), builder=builder, watch=False)


def _in_thread(
    session: BuildSession, context: Path, tag: str, outcomes: list[object], cancel: threading.Event | None = None
) -> threading.Thread:
    def call() -> None:
        try:
            request = BuildRequest(path=str(context), tags=[tag], builder="sleeping")
            outcomes.append(session.build(request, cancel=cancel))
        except BaseException as exc:  # what the thread ended with is the assertion
            outcomes.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def _context(tmp_path: Path) -> Path:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    return context


def test_close_stops_a_running_build_and_the_one_waiting_for_its_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = SleepingBuilder()
    session = _session(tmp_path, monkeypatch, builder)
    context = _context(tmp_path)
    outcomes: list[object] = []
    running = _in_thread(session, context, "app:1", outcomes)
    assert builder.started.acquire(timeout=GUARD_S)
    waiting = _in_thread(session, context, "app:1", outcomes)  # waits for app:1's lock
    session.close()
    running.join(GUARD_S)
    waiting.join(GUARD_S)
    assert not running.is_alive() and not waiting.is_alive(), "a call went on after close()"
    assert builder.builds == 1, "the call waiting for the tag's lock started an engine build after close()"
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert isinstance(outcome, rtbuild.ConfigError), outcome  # never a KeyboardInterrupt
        assert "closed while the call ran" in outcome.message
        assert outcome.hint


def test_closing_one_session_leaves_another_sessions_build_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, other = SleepingBuilder(), SleepingBuilder()
    closed, kept = _session(tmp_path, monkeypatch, mine), _session(tmp_path, monkeypatch, other)
    context = _context(tmp_path)
    outcomes: list[object] = []
    first = _in_thread(closed, context, "mine:1", outcomes)
    second = _in_thread(kept, context, "other:1", outcomes)
    assert mine.started.acquire(timeout=GUARD_S) and other.started.acquire(timeout=GUARD_S)
    closed.close()
    first.join(GUARD_S)
    assert not first.is_alive() and len(outcomes) == 1
    assert second.is_alive(), "closing one session stopped another session's build"
    kept.close()
    second.join(GUARD_S)
    assert not second.is_alive() and len(outcomes) == 2


def test_close_does_not_wait_for_each_build_to_stop_in_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopping an engine build may take its SIGINT, SIGTERM, SIGKILL escalation (5 s, 5 s,
    30 s for one that ignores the first two). close() ran that for each running build in
    turn, in the caller's thread: here the stop is held until the test lets it go, and close()
    must return while it is held."""
    import rtbuild.enginekit._runner as runner

    release = threading.Event()
    real_stop = runner.stop_process_group

    def held_stop(proc: object) -> None:
        release.wait(GUARD_S)
        real_stop(proc)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "stop_process_group", held_stop)
    builder = SleepingBuilder()
    session = _session(tmp_path, monkeypatch, builder)
    context = _context(tmp_path)
    outcomes: list[object] = []
    builds = [_in_thread(session, context, f"app:{index}", outcomes) for index in range(2)]
    for _ in builds:
        assert builder.started.acquire(timeout=GUARD_S)
    closing = threading.Thread(target=session.close, daemon=True)
    closing.start()
    closing.join(GUARD_S / 2)
    held = closing.is_alive()
    release.set()
    for thread in builds:
        thread.join(GUARD_S)
    assert not held, "close() waited for a build's stop"
    assert len(outcomes) == 2 and all(isinstance(outcome, rtbuild.ConfigError) for outcome in outcomes), outcomes


def test_a_closed_session_makes_no_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """session.builder() after close() created one (an engine client nobody closes) that
    the closed session would never use."""
    session = _session(tmp_path, monkeypatch, SleepingBuilder())
    session.close()
    for name in (None, "sleeping", "docker"):
        with pytest.raises(rtbuild.ConfigError, match="closed"):
            session.builder(name)
    assert session.stats()["walks"] == 0


def _cancelled(outcome: object) -> bool:
    return isinstance(outcome, rtbuild.BuildFailedError) and "cancelled (BuildSession.cancel)" in outcome.message


def test_cancel_stops_one_call_and_leaves_the_others_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, only close() could stop a call: a platform whose sandbox request went away
    had to let its build run to the end, or stop every build of the session."""
    builder = SleepingBuilder()
    session = _session(tmp_path, monkeypatch, builder)
    context = _context(tmp_path)
    stop_mine = threading.Event()
    mine: list[object] = []
    others: list[object] = []
    first = _in_thread(session, context, "mine:1", mine, cancel=stop_mine)
    second = _in_thread(session, context, "other:1", others, cancel=threading.Event())
    third = _in_thread(session, context, "third:1", others)
    for _ in range(3):
        assert builder.started.acquire(timeout=GUARD_S)
    session.cancel(stop_mine)
    first.join(GUARD_S)
    assert not first.is_alive(), "the cancelled call went on"
    assert len(mine) == 1 and _cancelled(mine[0]), mine
    assert mine[0].hint and mine[0].step  # type: ignore[attr-defined]
    assert second.is_alive() and third.is_alive() and not others, "cancel() stopped another call"
    session.close()
    for thread in (second, third):
        thread.join(GUARD_S)
    assert len(others) == 2 and all(isinstance(outcome, rtbuild.ConfigError) for outcome in others), others


def test_a_call_given_a_cancelled_event_starts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builder = SleepingBuilder()
    session = _session(tmp_path, monkeypatch, builder)
    done = threading.Event()
    session.cancel(done)  # no call uses it yet: it is set, so a call given it is refused
    with pytest.raises(rtbuild.BuildFailedError, match="cancelled"):
        session.build(BuildRequest(path=str(_context(tmp_path)), tags=["app:1"], builder="sleeping"), cancel=done)
    with pytest.raises(rtbuild.BuildFailedError, match="cancelled"):
        session.exists("app:1", cancel=done)
    assert builder.builds == 0
    session.close()


def test_cancel_stops_a_call_waiting_for_the_tag_and_not_the_build_it_waits_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = SleepingBuilder()
    session = _session(tmp_path, monkeypatch, builder)
    context = _context(tmp_path)
    outcomes: list[object] = []
    running = _in_thread(session, context, "app:1", outcomes)
    assert builder.started.acquire(timeout=GUARD_S)
    stop_waiter, in_wait = threading.Event(), threading.Event()
    waiter_outcomes: list[object] = []

    class Waits(rtbuild.Reporter):
        def event(self, kind: str, **fields: object) -> None:
            if kind == "waiting":
                in_wait.set()

    def wait_for_tag() -> None:
        with rtbuild.use_reporter(Waits()):
            try:
                request = BuildRequest(path=str(context), tags=["app:1"], builder="sleeping")
                waiter_outcomes.append(session.build(request, cancel=stop_waiter))
            except BaseException as exc:  # what the thread ended with is the assertion
                waiter_outcomes.append(exc)

    waiting = threading.Thread(target=wait_for_tag, daemon=True)
    waiting.start()
    assert in_wait.wait(GUARD_S), "the second call never waited for the tag's lock"
    session.cancel(stop_waiter)
    waiting.join(GUARD_S)
    assert not waiting.is_alive() and len(waiter_outcomes) == 1 and _cancelled(waiter_outcomes[0]), waiter_outcomes
    assert running.is_alive() and not outcomes, "cancelling the waiting call stopped the build it waited for"
    assert builder.builds == 1, "the cancelled call started an engine build"
    session.close()
    running.join(GUARD_S)
    assert len(outcomes) == 1 and isinstance(outcomes[0], rtbuild.ConfigError)
