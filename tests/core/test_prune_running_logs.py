"""``rtbuild prune`` keeps (and lists as kept) a build log a running build still writes,
in the default log directory and in a configured ``[builders.docker]`` or
``[builders.podman]`` ``log_dir``: a long step
that prints nothing leaves the log unmodified past ``--older-than``. The build holds a
shared flock on its log, so a build whose process this host's ``/proc`` does not show (in
a container sharing the directory) is seen too."""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rtbuild import PruneItem, PrunePolicy
from rtbuild._observe.local_state import prune_local
from rtbuild.enginekit import _logs, run_build
from rtbuild_docker.prune import prune_logs as docker_prune_logs
from rtbuild_podman.prune import prune_logs as podman_prune_logs

DAY = 86400.0
KEPT = "; kept: a running build writes it"


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def no_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The build's process is not seen here (another PID namespace): only its flock tells."""
    monkeypatch.setattr(_logs, "open_here", lambda files: set())


PRUNE_LOGS = pytest.mark.parametrize("prune_logs", [docker_prune_logs, podman_prune_logs], ids=["docker", "podman"])


@PRUNE_LOGS
def test_a_configured_log_dir_keeps_a_log_a_build_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prune_logs: Callable[[str, PrunePolicy], list[PruneItem]]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    running, finished = log_dir / "build-running.log", log_dir / "build-finished.log"
    for log in (running, finished):
        log.write_text("#5 [2/3] RUN sleep 600\n")
        _age(log, 15 * DAY)
    with running.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # what a build does (run_build)
        for policy in (PrunePolicy(dry_run=True), PrunePolicy(older_than_s=60.0)):
            items = {Path(item.name).name: item for item in prune_logs(str(log_dir), policy)}
            assert sorted(items) == ["build-finished.log", "build-running.log"]
            kept = items["build-running.log"]
            assert not kept.removed and kept.error is None and kept.size == 0 and kept.reason.endswith(KEPT)
        assert running.exists() and not finished.exists()
    [item] = prune_logs(str(log_dir), PrunePolicy(older_than_s=60.0))  # finished now: it goes
    assert item.removed and not running.exists()


@PRUNE_LOGS
def test_a_configured_log_dir_is_left_alone_by_a_repo_prune_and_the_default_is_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prune_logs: Callable[[str, PrunePolicy], list[PruneItem]]
) -> None:
    """``--repo`` prunes images only (docs/cli.md: local files are skipped with it); the
    default log directory is pruned once, by the core, not again by each backend."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    default = tmp_path / "state" / "rtbuild" / "logs"
    for log_dir in (tmp_path / "logs", default):
        log_dir.mkdir(parents=True)
        (log_dir / "build-old.log").write_text("#1 done\n")
        _age(log_dir / "build-old.log", 15 * DAY)
    assert prune_logs(str(tmp_path / "logs"), PrunePolicy(repositories=("rt/x",))) == []
    assert prune_logs(str(default), PrunePolicy()) == []
    assert (tmp_path / "logs" / "build-old.log").exists() and (default / "build-old.log").exists()
    [item] = prune_logs(str(tmp_path / "logs"), PrunePolicy())  # 14 days by default
    assert item.removed and item.reason == "older than 14 days"


def test_a_running_run_build_log_is_kept_even_unseen_in_proc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_proc: None
) -> None:
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name))
    logs = tmp_path / "XDG_STATE_HOME" / "rtbuild" / "logs"
    logs.mkdir(parents=True)
    log = logs / "build-silent.log"
    go = tmp_path / "go"
    # A fake engine CLI: one line, then a long silent step (until the test lets it end).
    engine = (
        "import os, time\nprint('#5 [2/2] RUN sleep 600', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
    )
    done: list[object] = []
    thread = threading.Thread(
        target=lambda: done.append(
            run_build([sys.executable, "-c", engine, "ctx"], env={}, log_path=str(log), stream=False)
        )
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while "RUN sleep" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the fake engine never printed"
            time.sleep(0.02)
        _age(log, 15 * DAY)
        [item] = prune_local(PrunePolicy(older_than_s=60.0))
        assert item.kind == "log" and not item.removed and item.reason.endswith(KEPT) and log.exists()
    finally:
        go.touch()
        thread.join(30)
    assert done and log.exists()
    _age(log, 15 * DAY)
    [item] = prune_local(PrunePolicy(older_than_s=60.0))  # the build ended: its log goes
    assert item.removed and not log.exists()


def test_a_builds_log_rotation_keeps_a_log_another_build_writes(tmp_path: Path) -> None:
    """Each build rotates the log directory (log_keep, log_max_age_days) before it starts:
    with more builds at once than log_keep, or one in a long silent step, it removed a
    running build's log."""
    from rtbuild.enginekit import rotate_logs

    logs = [tmp_path / f"build-{n}.log" for n in range(4)]
    for age, log in enumerate(reversed(logs)):
        log.write_text("#5 [2/3] RUN sleep 600\n")
        _age(log, 30 * DAY + age)
    with logs[0].open("a") as held:  # the oldest: a build still running
        fcntl.flock(held, fcntl.LOCK_SH)
        rotate_logs(str(tmp_path), keep=1, max_age_days=14)
        assert [log.exists() for log in logs] == [True, False, False, False]
    rotate_logs(str(tmp_path), keep=1, max_age_days=14)  # it ended: now it goes
    assert not logs[0].exists()
