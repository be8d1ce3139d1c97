"""A BuildSession closed while its builds run on the real engine (another thread, as an
agent platform shutting down does): the engine builds are stopped, nothing is tagged, the
callers get a ConfigError. Before, the builds ran to their end and tagged after close."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import docker_build_helpers as h
import rtbuild
from docker_build_helpers import Images

images = h.images
isolated_dirs = h.isolated_dirs


def test_close_stops_the_engine_builds_and_tags_nothing(images: Images, isolated_dirs: Path) -> None:
    contexts = []
    for index in range(3):
        context = isolated_dirs / f"ctx{index}"
        context.mkdir()
        # Unique: the engine's layer cache never answers the RUN step.
        (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} && sleep 600\n")
        contexts.append(context)
    started = threading.Semaphore(0)
    outcomes: list[object] = []
    session = rtbuild.BuildSession(rtbuild.Config())

    def call(index: int) -> None:
        request = rtbuild.BuildRequest(path=str(contexts[index % 3]), tags=[images.tag(f"t{index % 3}")])
        try:
            outcomes.append(images.remember(session.build(request)))
        except BaseException as exc:  # what the thread ended with is the assertion
            outcomes.append(exc)

    def on_line(text: str, *, source: str = "build") -> None:
        if "sleep 600" in text:
            started.release()

    class StepReporter(rtbuild.Reporter):
        line = staticmethod(on_line)  # type: ignore[assignment]

    def in_thread(index: int) -> threading.Thread:
        def run() -> None:
            with rtbuild.use_reporter(StepReporter()):
                call(index)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    threads = [in_thread(index) for index in range(6)]  # two per tag: one builds, one waits for its lock
    for _ in range(3):
        assert started.acquire(timeout=300), outcomes
    session.close()
    guard = time.monotonic() + 120  # a hang guard for all of them, never a timing claim
    for thread in threads:
        thread.join(max(0.0, guard - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a build went on after close()"
    assert len(outcomes) == 6
    for outcome in outcomes:
        assert isinstance(outcome, rtbuild.ConfigError), outcome
        assert "closed while the call ran" in outcome.message
    import psutil

    commands = [" ".join(process.info["cmdline"] or []) for process in psutil.process_iter(["cmdline"])]
    left = [command for command in commands if images.repo in command]
    assert not left, "an engine build outlived the closed session"
    for index in range(3):
        assert h.inspect(images.cli, images.tag(f"t{index}")) is None, "a build tagged after close()"


def test_cancel_stops_one_engine_build_and_tags_nothing(images: Images, isolated_dirs: Path) -> None:
    """BuildSession.cancel(event): the call given that event stops (its engine build too,
    nothing tagged); the session's other build runs on until close()."""
    contexts = []
    for index in range(2):
        context = isolated_dirs / f"cancel{index}"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} && sleep 600\n")
        contexts.append(context)
    started = threading.Semaphore(0)
    outcomes: dict[int, object] = {}
    stops = [threading.Event(), threading.Event()]
    session = rtbuild.BuildSession(rtbuild.Config())

    class StepReporter(rtbuild.Reporter):
        def line(self, text: str, *, source: str = "build") -> None:
            if "sleep 600" in text:
                started.release()

    def run(index: int) -> None:
        request = rtbuild.BuildRequest(path=str(contexts[index]), tags=[images.tag(f"c{index}")])
        with rtbuild.use_reporter(StepReporter()):
            try:
                outcomes[index] = images.remember(session.build(request, cancel=stops[index]))
            except BaseException as exc:  # what the thread ended with is the assertion
                outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(2)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert started.acquire(timeout=300), outcomes
    session.cancel(stops[0])
    threads[0].join(120)  # a hang guard, never a timing claim
    assert not threads[0].is_alive(), "the cancelled build went on"
    assert isinstance(outcomes[0], rtbuild.BuildFailedError) and "cancelled" in outcomes[0].message, outcomes
    assert threads[1].is_alive() and 1 not in outcomes, "cancel() stopped the session's other build"
    import psutil

    commands = [" ".join(process.info["cmdline"] or []) for process in psutil.process_iter(["cmdline"])]
    assert not [command for command in commands if images.tag("c0") in command], "the cancelled engine build ran on"
    assert h.inspect(images.cli, images.tag("c0")) is None, "a cancelled build tagged"
    session.close()
    threads[1].join(120)
    assert not threads[1].is_alive() and isinstance(outcomes[1], rtbuild.ConfigError), outcomes
