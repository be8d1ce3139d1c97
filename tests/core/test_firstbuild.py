"""First builds hash alongside the engine: a digest is recorded only when it is the image's."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import rtbuild.context._watch
import rtbuild.enginekit._firstbuild
from rtbuild.context import context_digest
from rtbuild.enginekit import (
    ConcurrentDigest,
    Inputs,
    carries_digest,
    forget_digests,
    record_digest,
    recorded_digests,
)

IMAGE_ID = "sha256:" + "ab" * 32


pytestmark = pytest.mark.usefixtures("isolated_cache")


#: The racy window, shortened for these tests (2 s in use) so they need not wait 2 s each.
WINDOW_NS = 200_000_000


@pytest.fixture
def settled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A context whose files are older than the racy window (ctime cannot be set back)."""
    import rtbuild.context._hashing
    import rtbuild.context._snapshot

    monkeypatch.setattr(rtbuild.context._snapshot, "RACY_NS", WINDOW_NS)
    monkeypatch.setattr(rtbuild.context._hashing, "_RACY_NS", WINDOW_NS)
    ctx = tmp_path / "ctx"
    (ctx / "pkg").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (ctx / "app.py").write_text("v1")
    (ctx / "pkg" / "mod.py").write_text("module")
    time.sleep(WINDOW_NS / 1e9 + 0.05)
    return ctx


def _digest(ctx: Path, images: dict[str, str] | None = None) -> Callable[[], Inputs]:
    def compute() -> Inputs:
        digest = context_digest(str(ctx)).digest
        return Inputs(digest=digest, context_digest=digest, external_images=dict(images or {}))

    return compute


@pytest.mark.parametrize("watched", [True, False], ids=["inotify", "stat-walk"])
def test_records_a_digest_that_holds(settled: Path, watched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not watched:
        monkeypatch.setattr(rtbuild.context._watch, "try_watch", lambda root: (None, "not watched here"))
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), _digest(settled))
    assert concurrent.settled()
    concurrent.start()
    inputs = concurrent.finish(IMAGE_ID)
    assert inputs is not None and concurrent.reason is None
    assert inputs.digest == context_digest(str(settled), use_cache=False).digest
    assert recorded_digests(IMAGE_ID) == [inputs.digest]
    assert carries_digest({"Id": IMAGE_ID, "Config": {"Labels": None}}, inputs.digest)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: (c / "app.py").write_text("v2"), id="edit"),
        pytest.param(lambda c: (c / "pkg" / "new.py").write_text("new"), id="new-file"),
        pytest.param(lambda c: (c / "pkg" / "mod.py").unlink(), id="delete"),
        pytest.param(lambda c: os.chmod(c / "app.py", 0o755), id="chmod"),
        pytest.param(lambda c: (c / "app.py").rename(c / "main.py"), id="rename"),
        pytest.param(lambda c: (c / "Dockerfile").write_text("FROM busybox\n"), id="dockerfile"),
        pytest.param(lambda c: (c / ".dockerignore").write_text("pkg\n"), id="dockerignore"),
    ],
)
@pytest.mark.parametrize("watched", [True, False], ids=["inotify", "stat-walk"])
def test_a_change_during_the_build_records_nothing(
    settled: Path, change: Callable[[Path], object], watched: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not watched:  # as on a filesystem inotify cannot vouch for: a second stat walk decides
        monkeypatch.setattr(rtbuild.context._watch, "try_watch", lambda root: (None, "not watched here"))
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), _digest(settled))
    concurrent.start()
    assert (concurrent._watch is not None) == watched
    change(settled)  # while the "engine" builds
    assert concurrent.finish(IMAGE_ID) is None
    assert concurrent._watch is None  # the watch's descriptor is released
    # "X changed during the build", or the hash itself tripped over the change.
    assert concurrent.reason
    assert recorded_digests(IMAGE_ID) == []
    fresh = context_digest(str(settled), use_cache=False).digest
    assert not carries_digest({"Id": IMAGE_ID}, fresh), "a digest claims content the image may not hold"


def test_a_change_while_hashing_records_nothing(settled: Path) -> None:
    hashed = _digest(settled)

    def compute() -> Inputs:
        inputs = hashed()
        (settled / "app.py").write_text("v2, written after the hash read v1")
        return inputs

    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), compute)
    concurrent.start()
    assert concurrent.finish(IMAGE_ID) is None
    assert recorded_digests(IMAGE_ID) == []


def test_a_racy_context_is_not_settled_without_a_watch(settled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtbuild.context._watch, "try_watch", lambda root: (None, "not watched here"))
    (settled / "app.py").write_text("just written")
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), _digest(settled))
    assert not concurrent.settled()


def test_a_watched_racy_context_records_its_digest_without_a_stat_walk(
    settled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a watch, a file written a moment ago is no reason to hash first: a second write
    in the same timestamp tick is an event. And no stat walk runs before the engine."""
    import rtbuild.enginekit._firstbuild

    def no_walk(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stat walk of the watched context")

    monkeypatch.setattr(rtbuild.enginekit._firstbuild, "stat_snapshot", no_walk)
    (settled / "app.py").write_text("just written")
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), _digest(settled))
    assert concurrent.settled()
    concurrent.start()
    assert concurrent._watch is not None
    inputs = concurrent.finish(IMAGE_ID)
    assert inputs is not None and concurrent.reason is None
    assert inputs.digest == context_digest(str(settled), use_cache=False).digest


def test_a_racy_dockerfile_outside_a_watched_context_is_not_settled(settled: Path, tmp_path: Path) -> None:
    """A Dockerfile outside the context is compared by stat keys, so a racy one still counts."""
    dockerfile = tmp_path / "elsewhere" / "Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text("FROM scratch\nCOPY . /\n")
    concurrent = ConcurrentDigest(str(settled), str(dockerfile), _digest(settled))
    assert not concurrent.settled()
    assert concurrent._watch is not None
    concurrent.abandon()


def test_a_dockerfile_outside_a_watched_context_changed_during_the_build_records_nothing(
    settled: Path, tmp_path: Path
) -> None:
    dockerfile = tmp_path / "elsewhere" / "Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text("FROM scratch\nCOPY . /\n")
    old = time.time() - 10
    os.utime(dockerfile, (old, old))
    time.sleep(WINDOW_NS / 1e9 + 0.05)  # its ctime, too, leaves the racy window
    concurrent = ConcurrentDigest(str(settled), str(dockerfile), _digest(settled))
    assert concurrent.settled()
    concurrent.start()
    dockerfile.write_text("FROM busybox\n")  # outside the watch: seen by its stat keys
    assert concurrent.finish(IMAGE_ID) is None
    assert concurrent.reason and str(dockerfile) in concurrent.reason


def test_an_external_image_retagged_during_the_build_records_nothing(settled: Path) -> None:
    ids = iter([{"busybox": "sha256:1"}, {"busybox": "sha256:2"}])
    concurrent = ConcurrentDigest(
        str(settled), str(settled / "Dockerfile"), _digest(settled, {"busybox": "sha256:1"}), lambda: next(ids)
    )
    concurrent.start()
    assert concurrent.finish(IMAGE_ID) is None
    assert concurrent.reason and "re-tagged" in concurrent.reason


def test_a_failing_hash_records_nothing(settled: Path) -> None:
    def compute() -> Inputs:
        raise OSError("disk on fire")

    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), compute)
    concurrent.start()
    assert concurrent.finish(IMAGE_ID) is None
    assert concurrent.reason and "disk on fire" in concurrent.reason


def _signalled(ctx: Path) -> tuple[threading.Event, Callable[[], Inputs]]:
    called = threading.Event()
    compute = _digest(ctx)

    def watched_compute() -> Inputs:
        called.set()
        return compute()

    return called, watched_compute


def test_a_hash_started_until_the_engine_starts_waits_for_it(settled: Path) -> None:
    """``start(until_engine_started=True)``: the hash (which holds the GIL for most of its
    run) waits until the engine runs, and a change made before that is still seen (the
    watch began in ``start``)."""
    called, compute = _signalled(settled)
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), compute)
    concurrent.start(until_engine_started=True)
    assert not called.wait(0.2), "the hash began before the engine started"
    (settled / "app.py").write_text("v2")
    concurrent.engine_started()
    assert called.wait(10)
    assert concurrent.finish(IMAGE_ID) is None
    assert "changed" in (concurrent.reason or "")
    assert recorded_digests(IMAGE_ID) == []


def test_a_hash_waiting_for_the_engine_runs_on_finish_and_never_after_abandon(settled: Path) -> None:
    calls: list[str] = []
    compute = _digest(settled)

    def counted() -> Inputs:
        calls.append("hash")
        return compute()

    waiting = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), counted)
    waiting.start(until_engine_started=True)
    inputs = waiting.finish(IMAGE_ID)  # the engine never said so: the hash runs now
    assert inputs is not None and calls == ["hash"]
    abandoned = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), counted)
    abandoned.start(until_engine_started=True)
    abandoned.abandon()
    assert abandoned._thread is not None
    abandoned._thread.join(10)
    assert not abandoned._thread.is_alive() and calls == ["hash"]


def test_a_hash_waiting_for_the_context_begins_once_the_engine_has_it(settled: Path) -> None:
    """``start(until_context_sent=True)``: the engine starting is not enough (its client
    is sending the context then), ``context_sent`` is; the digest is still recorded."""
    called, compute = _signalled(settled)
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), compute)
    concurrent.start(until_context_sent=True)
    concurrent.engine_started()
    assert not called.wait(0.3), "the hash began while the context was still being sent"
    concurrent.context_sent()
    assert called.wait(10)
    inputs = concurrent.finish(IMAGE_ID)
    assert inputs is not None and recorded_digests(IMAGE_ID) == [inputs.digest]
    assert concurrent.began == "context sent"


def test_a_hash_waiting_for_the_context_begins_after_the_wait_when_no_end_is_seen(
    settled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build that reads no context, or output the watch does not know: the hash begins
    ``CONTEXT_WAIT_S`` after the engine started, alongside it as before."""
    monkeypatch.setattr(rtbuild.enginekit._firstbuild, "CONTEXT_WAIT_S", 0.3)
    called, compute = _signalled(settled)
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), compute)
    concurrent.start(until_context_sent=True)
    assert not called.wait(0.3), "the hash began before the engine started"
    concurrent.engine_started()
    assert called.wait(10)
    assert concurrent.finish(IMAGE_ID) is not None
    assert concurrent.began == "no end of the context transfer seen"


def test_a_hash_waiting_for_the_context_runs_on_finish_and_its_timer_goes(
    settled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rtbuild.enginekit._firstbuild, "CONTEXT_WAIT_S", 600.0)
    called, compute = _signalled(settled)
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), compute)
    concurrent.start(until_context_sent=True)
    concurrent.engine_started()
    timers = [t for t in threading.enumerate() if t.name == "rtbuild-hash-wait"]
    assert timers, "no wait timer runs"
    assert concurrent.finish(IMAGE_ID) is not None  # a short build: the hash runs now
    assert called.is_set() and concurrent.began == "engine finished"
    for timer in timers:
        timer.join(5)
        assert not timer.is_alive(), "the wait timer outlived the build"
    abandoned = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), compute)
    abandoned.start(until_context_sent=True)
    abandoned.engine_started()
    abandoned.abandon()
    assert not [t for t in threading.enumerate() if t.name == "rtbuild-hash-wait" and t.is_alive()]


def test_records_keep_a_few_digests_per_image() -> None:
    for index in range(12):
        assert record_digest(IMAGE_ID, f"d{index}")
    assert recorded_digests(IMAGE_ID) == [f"d{index}" for index in range(4, 12)]
    assert not record_digest("not-an-image-id", "d")
    label = {"Id": "sha256:" + "cd" * 32, "Config": {"Labels": {"org.rtbuild.input-digest": "x"}}}
    assert carries_digest(label, "x") and not carries_digest(label, "y")


def test_forgetting_an_image_removes_its_record_and_nothing_else() -> None:
    other = "b" * 64
    assert record_digest(IMAGE_ID, "d1") and record_digest(other, "d2")
    assert forget_digests(IMAGE_ID)
    assert recorded_digests(IMAGE_ID) == [] and recorded_digests(other) == ["d2"]
    assert not forget_digests(IMAGE_ID.removeprefix("sha256:"))  # already gone (either form)
    assert not forget_digests("sha256:" + "c" * 64)  # a layer's ID: never had a record
    assert not forget_digests("not-an-image-id")


def test_records_are_bounded_and_the_least_recently_used_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import rtbuild.enginekit._records as records

    monkeypatch.setattr(records, "MAX_RECORDS", 4)
    ids = [f"sha256:{index:x}{'0' * 63}" for index in range(1, 7)]  # no "0" first: no check
    for age, image_id in enumerate(ids):
        assert record_digest(image_id, "d")
        path = records.record_path(image_id)
        assert path is not None
        os.utime(path, (1000 + age, 1000 + age))  # written long ago, oldest first
    used = records.record_path(ids[0])
    assert used is not None
    os.utime(used, (time.time(), 1000))  # the oldest record, but read just now
    in_flight = used.parent / f".{'0' * 64}-x.tmp"
    in_flight.write_text("a write under way")
    assert len(list(used.parent.iterdir())) == 7  # unchecked writes leave the bound alone
    newest = "sha256:" + "0" * 64  # IDs starting "0" check the bound (1 write in 16)
    assert record_digest(newest, "d")
    kept = {image_id.removeprefix("sha256:") for image_id in (newest, ids[0], ids[4], ids[5])}
    assert {p.name for p in used.parent.iterdir()} == kept | {in_flight.name}


def test_a_symlinked_dockerfile_changed_during_a_watched_build_records_nothing(settled: Path, tmp_path: Path) -> None:
    """The client reads a symlinked Dockerfile's target, which the context's watch does not see."""
    target = tmp_path / "elsewhere" / "Dockerfile.real"
    target.parent.mkdir()
    target.write_text("FROM scratch\nCOPY . /\n")
    old = time.time() - 10
    os.utime(target, (old, old))
    (settled / "Dockerfile").unlink()
    (settled / "Dockerfile").symlink_to(target)
    time.sleep(WINDOW_NS / 1e9 + 0.05)
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), _digest(settled))
    assert concurrent.settled()
    concurrent.start()
    assert concurrent._watch is not None
    target.write_text("FROM busybox\n")  # no event in the context: only the target changed
    assert concurrent.finish(IMAGE_ID) is None
    assert concurrent.reason and "Dockerfile" in concurrent.reason


def test_a_link_outside_the_context_re_pointed_during_a_watched_build_records_nothing(
    settled: Path, tmp_path: Path
) -> None:
    """The Dockerfile leads through a link outside the context back into it: re-pointing
    that link raises no event in the context, yet changes what the client reads."""
    (settled / "Dockerfile.a").write_text("FROM scratch\n")
    (settled / "Dockerfile.b").write_text("FROM busybox\n")
    hop = tmp_path / "elsewhere" / "hop"
    hop.parent.mkdir()
    hop.symlink_to(settled / "Dockerfile.a")
    (settled / "Dockerfile").unlink()
    (settled / "Dockerfile").symlink_to(hop)
    time.sleep(WINDOW_NS / 1e9 + 0.05)
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), _digest(settled))
    assert concurrent.outside == []  # it ends inside the context, so it is not stat-compared
    assert concurrent.settled()
    concurrent.start()
    assert concurrent._watch is not None
    hop.unlink()
    hop.symlink_to(settled / "Dockerfile.b")
    assert concurrent.finish(IMAGE_ID) is None
    assert concurrent.reason and "Dockerfile" in concurrent.reason
    assert recorded_digests(IMAGE_ID) == []


def test_run_build_says_when_the_engine_process_runs(tmp_path: Path) -> None:
    """``on_started`` is called while the engine process runs (the script only finishes
    early when it sees what the callback wrote), not after it ends."""
    from rtbuild.enginekit import run_build

    marker = tmp_path / "started"
    script = f"for i in $(seq 100); do [ -e {marker} ] && echo seen && exit 0; sleep 0.05; done; echo unseen"
    result = run_build(["sh", "-c", script, "context"], env={}, log_path=None, stream=False, on_started=marker.touch)
    assert result.returncode == 0
    assert result.lines == ["seen"]


def test_the_hash_is_never_left_niced_while_the_caller_waits_for_it(
    settled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash thread lowers its priority while the engine runs and ``finish`` raises it
    again. Here the thread is held between deciding to lower it and doing so, and
    ``finish`` is called meanwhile: the raise must still come last."""
    import threading

    import rtbuild.enginekit._firstbuild as firstbuild

    base = os.getpriority(os.PRIO_PROCESS, 0)
    calls: list[tuple[str, int]] = []
    lowering = threading.Event()

    def recorded(tid: int, nice: int) -> None:
        if threading.current_thread().name == "rtbuild-hash":
            lowering.set()
            time.sleep(0.3)  # preempted just before the system call
        calls.append((threading.current_thread().name, nice))

    compute = _digest(settled)

    def slow_compute() -> Inputs:
        time.sleep(1.0)  # still hashing when finish() may raise the priority
        return compute()

    monkeypatch.setattr(firstbuild, "_set_priority", recorded)
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), slow_compute)
    concurrent.start(until_engine_started=True)
    concurrent.engine_started()
    assert lowering.wait(10)
    assert concurrent.finish(IMAGE_ID) is not None
    assert calls == [("rtbuild-hash", base + firstbuild.HASH_NICE), ("MainThread", base)]


def _digest_with_links(ctx: Path) -> Callable[[], Inputs]:
    """As the Docker backend computes them: the hash walk's multiply-linked files go along."""

    def compute() -> Inputs:
        result = context_digest(str(ctx))
        return Inputs(digest=result.digest, context_digest=result.digest, linked=result.linked)

    return compute


@pytest.fixture
def linked(settled: Path, tmp_path: Path) -> Path:
    """``app.py`` of the settled context with a second name outside it (settled too)."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.link(settled / "app.py", outside / "app.py")  # moves app.py's ctime: wait it out
    time.sleep(WINDOW_NS / 1e9 + 0.05)
    return outside / "app.py"


def test_an_untouched_hard_linked_file_still_gets_its_digest(settled: Path, linked: Path) -> None:
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), _digest_with_links(settled))
    assert concurrent.settled()
    concurrent.start()
    inputs = concurrent.finish(IMAGE_ID)
    assert inputs is not None and concurrent.reason is None
    assert list(inputs.linked) == [str(settled / "app.py")]


@pytest.mark.parametrize("when", ["before the hash", "after the hash"])
def test_a_hard_linked_file_written_through_its_outside_name_records_nothing(
    settled: Path, linked: Path, when: str
) -> None:
    """A write through a hard link's name outside the context raises no inotify event in
    it: the watch saw nothing, and the digest was recorded although the engine may have
    read the file before the write and the hash after it (or the other way round)."""
    concurrent = ConcurrentDigest(str(settled), str(settled / "Dockerfile"), _digest_with_links(settled))
    assert concurrent.settled()
    concurrent.start(until_engine_started=True)
    if when == "before the hash":
        linked.write_text("v2")  # the engine may have read v1 already
        concurrent.engine_started()
    else:
        concurrent.engine_started()
        assert concurrent._thread is not None
        concurrent._thread.join()
        linked.write_text("v2")  # the engine may read v2
    assert concurrent.finish(IMAGE_ID) is None
    assert concurrent.reason is not None and "hard link" in concurrent.reason, concurrent.reason
    assert recorded_digests(IMAGE_ID) == []
