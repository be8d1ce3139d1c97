"""BuildSession.close() stops the calls still running in other threads.

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


def _in_thread(session: BuildSession, context: Path, tag: str, outcomes: list[object]) -> threading.Thread:
    def call() -> None:
        try:
            outcomes.append(session.build(BuildRequest(path=str(context), tags=[tag], builder="sleeping")))
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
