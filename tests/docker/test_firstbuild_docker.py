"""First builds on the real engine: the engine starts at once, the digest is recorded
beside the image afterwards, and never when the context changed during the build."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import docker_build_helpers as h
import pytest
import rtbuild.context._hashing
import rtbuild.context._snapshot
from rtbuild import BuildResult
from rtbuild._framework.progress import use_reporter
from rtbuild.context import context_digest
from rtbuild.enginekit import DIGEST_LABEL, RECORDED, ConcurrentDigest, recorded_digests

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
#: The racy window, shortened so the test need not wait 2 s (the logic is the same).
WINDOW_NS = 200_000_000


@pytest.fixture
def settled(context: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(rtbuild.context._snapshot, "RACY_NS", WINDOW_NS)
    monkeypatch.setattr(rtbuild.context._hashing, "_RACY_NS", WINDOW_NS)
    time.sleep(WINDOW_NS / 1e9 + 0.05)
    return context


def test_a_first_build_records_its_digest_beside_the_image(images: h.Images, settled: Path) -> None:
    first = h.build(images, settled)
    assert not first.cached
    image_id = first.details["image_id"]
    info = h.inspect(images.cli, images.tag())
    assert info is not None and info["Config"]["Labels"][DIGEST_LABEL] == RECORDED  # built before hashing
    assert recorded_digests(image_id) == [first.details["input_digest"]]
    again = h.build(images, settled)
    assert again.cached and again.details["image_id"] == image_id


def test_a_first_build_hashes_once_the_engine_has_the_context(images: h.Images, settled: Path) -> None:
    """The hash waits for BuildKit's ``load build context`` to end (client and engine use
    the CPUs while the context is sent), then runs alongside the rest of the build."""
    events = h.Events()
    with use_reporter(events):
        first = h.build(images, settled)
    recorded = events.of("digest_recorded")
    assert len(recorded) == 1 and recorded[0]["hash_began"] == "context sent", events.events
    assert recorded_digests(first.details["image_id"]) == [first.details["input_digest"]]


def test_a_first_build_that_reads_no_context_still_records_its_digest(images: h.Images, settled: Path) -> None:
    """No ``COPY``: BuildKit never loads the context, so no end of its transfer is seen; the
    hash still runs (here after the short build) and the next request is a no-op."""
    (settled / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex}\n")
    time.sleep(WINDOW_NS / 1e9 + 0.05)
    events = h.Events()
    with use_reporter(events):
        first = h.build(images, settled)
    recorded = events.of("digest_recorded")
    assert len(recorded) == 1, events.events
    assert recorded[0]["hash_began"] in ("engine finished", "no end of the context transfer seen")
    assert h.build(images, settled).cached
    assert recorded_digests(first.details["image_id"]) == [first.details["input_digest"]]


def test_a_context_just_written_and_not_watched_is_hashed_first_and_labelled(
    images: h.Images, context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rtbuild.context._watch

    monkeypatch.setattr(rtbuild.context._watch, "try_watch", lambda root: (None, "not watched here"))
    first = h.build(images, context)  # files written a moment ago: racy, and no watch vouches
    info = h.inspect(images.cli, images.tag())
    assert info is not None and info["Config"]["Labels"][DIGEST_LABEL] == first.details["input_digest"]
    assert h.build(images, context).cached


def test_a_context_just_written_and_watched_gets_its_digest_at_engine_speed(images: h.Images, context: Path) -> None:
    first = h.build(images, context)  # racy, but a second write in the tick would be an event
    info = h.inspect(images.cli, images.tag())
    assert info is not None and info["Config"]["Labels"][DIGEST_LABEL] == RECORDED
    assert recorded_digests(first.details["image_id"]) == [first.details["input_digest"]]
    assert first.details["input_digest"] == _inputs_digest_now(context)
    again = h.build(images, context)
    assert again.cached and again.details["image_id"] == first.details["image_id"]


def _first_build_edited_meanwhile(
    images: h.Images, settled: Path, monkeypatch: pytest.MonkeyPatch, target: Path
) -> BuildResult:
    """A first build of ``settled`` (its RUN sleeps 3 s) during which ``target`` is written
    (``version 2``), 1 s after the first snapshot; fails unless it took the hash-alongside path."""
    # A fresh RUN line each time: BuildKit must not answer `sleep 3` from its cache.
    (settled / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} && sleep 3\nCOPY . /ctx\n")
    time.sleep(WINDOW_NS / 1e9 + 0.05)
    timers: list[threading.Timer] = []
    start = ConcurrentDigest.start

    def start_then_edit(self: ConcurrentDigest, **how: bool) -> None:
        start(self, **how)  # the first snapshot is taken: the engine starts next and runs `sleep 3`
        timer = threading.Timer(1.0, lambda: target.write_text("version 2\n"))
        timers.append(timer)
        timer.start()

    monkeypatch.setattr(ConcurrentDigest, "start", start_then_edit)
    try:
        first = h.build(images, settled)
    finally:
        for timer in timers:
            timer.join()
    assert len(timers) == 1, "the first build did not take the hash-alongside path"
    return first


def test_a_file_changed_during_the_build_leaves_no_digest_claiming_it(
    images: h.Images, settled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _first_build_edited_meanwhile(images, settled, monkeypatch, settled / "app.txt")
    assert not first.cached
    assert recorded_digests(first.details["image_id"]) == []
    assert "input_digest" not in first.details
    # Whatever the engine read, the next request must not reuse an image claiming v2
    # unless the image holds v2.
    second = h.build(images, settled)
    shown = h.docker(images.cli, "run", "--rm", images.tag(), "cat", "/ctx/app.txt").stdout
    if second.cached:
        assert shown == "version 2\n"
    assert second.details["input_digest"] == _inputs_digest_now(settled)


def test_a_hard_linked_file_written_through_its_outside_name_during_the_build_leaves_no_digest(
    images: h.Images, settled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write goes through the file's second name, outside the context: inotify raised no
    event in the context, and the digest was recorded for whichever version the hash read."""
    import os

    outside = tmp_path / "elsewhere.txt"
    os.link(settled / "app.txt", outside)
    first = _first_build_edited_meanwhile(images, settled, monkeypatch, outside)
    assert recorded_digests(first.details["image_id"]) == []
    second = h.build(images, settled)
    shown = h.docker(images.cli, "run", "--rm", images.tag(), "cat", "/ctx/app.txt").stdout
    assert shown == "version 2\n" or not second.cached


def _inputs_digest_now(ctx: Path) -> str:
    """The input digest of the same request now, from a walk that reads every file."""
    from rtbuild.enginekit import compute_inputs
    from rtbuild_docker.engine import EngineAPI

    inputs = compute_inputs(
        context_digest=context_digest(str(ctx), use_cache=False).digest,
        dockerfile_text=(ctx / "Dockerfile").read_text(),
        build_args={},
        labels={},
        platform=None,
        target=None,
        extra_build_args=[],
        api=EngineAPI(),
    )
    assert inputs is not None
    return inputs.digest
