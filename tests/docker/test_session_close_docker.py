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
