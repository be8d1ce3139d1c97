"""Build locks: one build per tag across threads and processes (fake builders, no engine)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rtbuild import AgentRuntimeBuildError, BuildRequest, Config, run_build
from rtbuild._framework.locks import build_lock, lock_dir, lock_name, lock_names
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild._framework.progress import Reporter, use_reporter
from rtbuild.testing import FakeBuilder


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


class SkippingBuilder(FakeBuilder):
    """Like a real backend with a no-op skip: an image already built is not built again.

    The slow "engine" build leaves a window in which concurrent requests would all build."""

    def __init__(self) -> None:
        super().__init__()
        self.engine_builds: list[str] = []
        self._guard = threading.Lock()

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        with self._guard:
            self.calls.append({"method": "build", "tags": list(tags)})
        if tags[0] in self.images:
            return tags[0]
        time.sleep(0.2)
        with self._guard:
            self.engine_builds.append(tags[0])
        self.images.update(tags)
        return tags[0]


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


def test_lock_dir_follows_xdg_cache_home(_cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert lock_dir() == _cache_home / "rtbuild" / "locks"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert lock_dir() == Path(os.path.expanduser("~")) / ".cache" / "rtbuild" / "locks"


def test_lock_names_use_normalized_tags() -> None:
    assert lock_name("busybox") == lock_name("docker.io/library/busybox:latest")
    assert lock_name("busybox:1") != lock_name("busybox:2")
    assert lock_names(["b:1", "a:1", "docker.io/library/a:1"]) == sorted({lock_name("a:1"), lock_name("b:1")})
    assert lock_name("127.0.0.1:5000/x/y:1").endswith(".lock") and "/" not in lock_name("127.0.0.1:5000/x/y:1")


def test_lock_files_are_created_under_the_cache_and_removed_on_release(_cache_home: Path) -> None:
    path = _cache_home / "rtbuild" / "locks" / lock_name("app:1")
    with build_lock(["app:1", "app:2"]):
        assert path.exists()
    # One file per tag ever built piled up (thousands a day on a busy host).
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_a_waiter_on_a_removed_lock_file_still_excludes_the_next_build(_cache_home: Path, tmp_path: Path) -> None:
    """A waiter opened the file the holder unlinks on release: it must lock the new file, so
    a build arriving then still waits for it (never two builds of one tag at once)."""
    busy = tmp_path / "busy"
    overlaps = tmp_path / "overlaps"

    def build(name: str) -> None:
        with build_lock(["app:1"]):
            try:
                fd = os.open(busy, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                with open(overlaps, "a") as out:
                    out.write(name + "\n")
                return
            time.sleep(0.01)
            os.close(fd)
            os.unlink(busy)

    for _ in range(15):
        processes = [multiprocessing.get_context("fork").Process(target=build, args=(f"p{i}",)) for i in range(3)]
        threads = [threading.Thread(target=build, args=(f"t{i}",)) for i in range(3)]
        workers: list[multiprocessing.process.BaseProcess | threading.Thread] = [*processes, *threads]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert all(process.exitcode == 0 for process in processes)
    assert not overlaps.exists(), overlaps.read_text()
    assert list((_cache_home / "rtbuild" / "locks").iterdir()) == []


def test_an_unusable_cache_dir_is_a_config_error_naming_it(_cache_home: Path) -> None:
    from rtbuild import ConfigError

    _cache_home.parent.mkdir(parents=True, exist_ok=True)
    _cache_home.write_text("a file, not a directory")
    with pytest.raises(ConfigError, match="for build locks") as info, build_lock(["app:1"]):
        pass
    assert str(_cache_home) in info.value.message and info.value.hint and "XDG_CACHE_HOME" in info.value.hint
    _cache_home.unlink()
    (_cache_home / "rtbuild" / "locks" / lock_name("app:1")).mkdir(parents=True)  # the lock file's name is taken
    with pytest.raises(ConfigError, match="for build locks"), build_lock(["app:1"]):
        pass


def test_second_holder_waits_and_is_told_why() -> None:
    held, release = threading.Event(), threading.Event()
    messages: list[str] = []
    order: list[str] = []

    def first() -> None:
        with build_lock(["app:1"]):
            held.set()
            release.wait(10)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)

    def on_wait(message: str) -> None:
        messages.append(message)
        release.set()  # let the holder finish only once we are known to be waiting

    with build_lock(["app:1"], on_wait=on_wait):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    assert messages and messages[0].startswith("waiting for the build of app:1 in progress")


def test_timeout_raises_a_rtbuild_error() -> None:
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with build_lock(["app:1"]):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    try:
        with pytest.raises(AgentRuntimeBuildError) as info, build_lock(["app:1"], timeout=0):
            pass
    finally:
        release.set()
        thread.join()
    assert info.value.step == "wait for build lock"
    assert info.value.hint


@pytest.mark.parametrize("timeout", [float("inf"), 1e300, 1e10], ids=["inf", "1e300", "1e10"])
def test_a_huge_timeout_waits_for_the_holder(timeout: float) -> None:
    """lock_timeout = inf (the configuration accepts it) or a huge number, with the lock held by
    another thread of the process (an API user's threads): 'timestamp out of range for platform
    time_t' (OverflowError), an internal error, instead of a wait."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with build_lock(["app:1"]):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    try:
        with build_lock(["app:1"], timeout=timeout, on_wait=lambda message: release.set()):
            assert release.is_set()  # it waited (on_wait let the holder go), then took the lock
    finally:
        release.set()
        thread.join()


def test_distinct_tags_do_not_block_each_other() -> None:
    with build_lock(["app:1"]), build_lock(["app:2"], timeout=0):
        pass


def test_overlapping_tag_sets_share_a_lock() -> None:
    with (
        build_lock(["app:1", "app:latest"]),
        pytest.raises(AgentRuntimeBuildError),
        build_lock(["app:latest", "other:1"], timeout=0),
    ):
        pass


def test_lock_is_released_after_an_exception() -> None:
    with pytest.raises(RuntimeError), build_lock(["app:1"]):
        raise RuntimeError("boom")
    with build_lock(["app:1"], timeout=0):
        pass


def test_concurrent_run_build_threads_build_once(context: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    builder = SkippingBuilder()
    recorder = Recorder()
    results: list[Any] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with use_reporter(recorder):
                request = BuildRequest(path=str(context), tags=["shared:1"])
                results.append(run_build(request, config=Config(), pm=rtbuild_pm, builder=builder))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 8
    assert builder.engine_builds == ["shared:1"]
    # Every request ran the build hook (the waiters hit the builder's no-op skip).
    assert sum(1 for call in builder.calls if call["method"] == "build") == 8
    assert any(kind == "waiting" for kind, _ in recorder.events)


def test_concurrent_run_build_different_tags_all_build(context: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    builder = SkippingBuilder()
    threads = [
        threading.Thread(
            target=run_build,
            args=(BuildRequest(path=str(context), tags=[f"app:{i}"]),),
            kwargs={"config": Config(), "pm": rtbuild_pm, "builder": builder},
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(builder.engine_builds) == [f"app:{i}" for i in range(4)]


# --- across processes -------------------------------------------------------------------

#: A worker process: runs the pipeline against a file-backed fake engine shared by all
#: workers (an image "exists" when its file does; a build takes a while and is logged).
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from rtbuild import BuildRequest, Config, RuntimeBuilder, get_plugin_manager, run_build
    from rtbuild._framework.progress import JsonReporter, use_reporter

    engine, context, tag = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

    class FileEngineBuilder(RuntimeBuilder):
        name = "file-engine"

        def build(self, path, tags, platform=None, extra_build_args=None):
            image = engine / tags[0].replace("/", "_").replace(":", "_")
            if image.exists():
                return tags[0]
            # Hold the lock until every worker has started (a loaded machine staggers them).
            deadline = time.monotonic() + 60
            while len(list(engine.glob("arrived-*"))) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
            with open(engine / "builds.log", "a") as log:
                log.write(tags[0] + "\\n")
            image.write_text("built")
            return tags[0]

        def image_exists(self, image_name, pull_from_repo=True):
            return False

    pm = get_plugin_manager(Config(), load_entrypoints=False)
    (engine / f"arrived-{os.getpid()}").touch()
    with use_reporter(JsonReporter()):
        result = run_build(BuildRequest(path=context, tags=[tag]), config=Config(), pm=pm,
                           builder=FileEngineBuilder())
    print(result.image)
    """
)


def test_concurrent_processes_build_once(tmp_path: Path, context: Path, _cache_home: Path) -> None:
    engine = tmp_path / "engine"
    engine.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "XDG_CACHE_HOME": str(_cache_home)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(engine), str(context), "shared:1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "shared:1"
    assert (engine / "builds.log").read_text().splitlines() == ["shared:1"]
    # Waiters are told who holds the lock: the holder records its pid in the lock file.
    pids = {str(proc.pid) for proc in procs}
    waiting = [line for _, err in outputs for line in err.splitlines() if '"event": "waiting"' in line]
    assert waiting
    assert any("in progress (pid " in line and any(f"(pid {pid})" in line for pid in pids) for line in waiting)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from rtbuild._framework.locks import build_lock

    log, name = sys.argv[1], sys.argv[2]
    with build_lock(["shared:1"]):
        with open(log, "a") as out:
            out.write(f"start {name}\\n")
        time.sleep(0.1)
        with open(log, "a") as out:
            out.write(f"end {name}\\n")
    """
)


def test_lock_excludes_other_processes(tmp_path: Path, _cache_home: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    log = tmp_path / "order.log"
    env = {**os.environ, "XDG_CACHE_HOME": str(_cache_home)}
    procs = [subprocess.Popen([sys.executable, str(script), str(log), str(i)], env=env) for i in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 8
    # Never two holders at once: every start is followed by its own end.
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start.startswith("start ") and end == "end " + start.split()[1]


def test_process_and_thread_holders_exclude_each_other(tmp_path: Path, _cache_home: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    log = tmp_path / "order.log"
    env = {**os.environ, "XDG_CACHE_HOME": str(_cache_home)}
    with build_lock(["shared:1"]):
        proc = subprocess.Popen([sys.executable, str(script), str(log), "child"], env=env)
        # The child cannot get in while we hold the lock; give it the chance to try.
        time.sleep(0.5)
        assert not log.exists()
    assert proc.wait(timeout=120) == 0
    assert log.read_text().splitlines() == ["start child", "end child"]


def test_in_process_locks_do_not_pile_up() -> None:
    from rtbuild._framework import locks

    for index in range(50):
        with build_lock([f"app:{index}"]):
            assert len(locks._thread_locks) >= 1
    # Weak values: a lock left in an earlier test's exception cycle (a timeout's traceback)
    # is garbage, not held, and goes when the collector runs; what must not stay is a live one.
    gc.collect()
    assert len(locks._thread_locks) == 0


def test_filelock_fallback_without_fcntl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Where there is no fcntl (Windows), filelock provides the file lock."""
    from rtbuild._framework import locks

    monkeypatch.setattr(locks, "fcntl", None)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    log = tmp_path / "order.log"
    with build_lock(["shared:1"]):
        assert (locks.lock_dir() / lock_name("shared:1")).exists()
        # A process using flock cannot see filelock's lock on another platform, but here
        # filelock also uses flock on the same file: the child must wait for us.
        proc = subprocess.Popen([sys.executable, str(script), str(log), "child"], env=dict(os.environ))
        time.sleep(0.5)
        assert not log.exists()
    assert proc.wait(timeout=120) == 0
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with build_lock(["other:1"]):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    monkeypatch.setattr(locks, "_thread_lock", lambda path: threading.Lock())  # reach the file lock
    try:
        with pytest.raises(AgentRuntimeBuildError, match="gave up after"), build_lock(["other:1"], timeout=0.2):
            pass
    finally:
        release.set()
        thread.join()


def test_unlink_held_never_removes_a_file_made_at_the_path_since(tmp_path: Path) -> None:
    """Prune opens a dead lock file, then flocks it: meanwhile its holder may have released
    (and removed) it and another build made a new one at the path. Only the opened file may go."""
    from rtbuild._framework.locks import unlink_held

    path = tmp_path / "x.lock"
    path.write_text("old")
    fd = os.open(path, os.O_RDWR)
    try:
        path.unlink()
        path.write_text("a running build's")
        unlink_held(fd, path)
        assert path.read_text() == "a running build's"
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDWR)
    try:
        unlink_held(fd, path)
        assert not path.exists()
    finally:
        os.close(fd)
