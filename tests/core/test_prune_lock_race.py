"""``rtbuild prune`` removes a dead process's lock file while a build is opening it: the
build must still exclude the next build of the tag (no engine: the race is on files)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from rtbuild._framework.locks import build_lock, lock_dir, lock_name
from rtbuild._observe.local_state import LOCK_MIN_AGE_S, prune_local
from rtbuild._observe.prune import PruneItem, PrunePolicy


def test_a_lock_file_pruned_between_open_and_flock_still_excludes_the_next_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    tag = "reg/app:1"
    path = lock_dir() / lock_name(tag)
    path.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    path.write_text(json.dumps({"pid": dead.pid}))  # the last build of the tag, long finished
    old = time.time() - 2 * LOCK_MIN_AGE_S
    os.utime(path, (old, old))

    real_flock = fcntl.flock
    pruned: list[PruneItem] = []
    started: list[bool] = []

    def flock(fd: int, operation: int) -> None:
        if not started:  # the build opened the file; prune runs before its flock
            started.append(True)
            pruned.extend(prune_local(PrunePolicy()))
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    with build_lock([tag]):
        assert [(item.kind, item.removed) for item in pruned] == [("lock", True)]
        monkeypatch.setattr(fcntl, "flock", real_flock)
        # The next build of the tag opens the path as it is now and must find it held.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_unless_building_says_whether_a_build_holds_the_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What prune asks before removing a tag: held by a build (another thread here) ->
    False; free -> True, and the lock is held while inside (a build waits)."""
    import threading

    from rtbuild import AgentRuntimeBuildError
    from rtbuild.enginekit import unless_building

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    holding, release = threading.Event(), threading.Event()

    def build() -> None:
        with build_lock(["reg/app:1"]):
            holding.set()
            release.wait(60)

    builder = threading.Thread(target=build)
    builder.start()
    try:
        assert holding.wait(60)
        with unless_building("docker.io/reg/app:1") as free:  # the same tag, spelled out
            assert free is False
    finally:
        release.set()
        builder.join(60)
    with unless_building("reg/app:1") as free:
        assert free is True
        errors: list[BaseException] = []

        def late_build() -> None:
            try:
                with build_lock(["reg/app:1"], timeout=0):
                    pass
            except AgentRuntimeBuildError as exc:
                errors.append(exc)

        late = threading.Thread(target=late_build)
        late.start()
        late.join(60)
        assert len(errors) == 1


def test_a_held_lock_is_neither_listed_nor_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock whose recorded process is not seen here (a build in a container sharing the
    cache directory: another PID namespace) but whose flock is held belongs to a running
    build. The dry run listed it 'would remove' and the real run failed on it, exit 1
    ('held by a running build'), although the docs select only locks nobody holds."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = lock_dir() / lock_name("reg/app:1")
    path.parent.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    path.write_text(json.dumps({"pid": gone.pid}))
    old = time.time() - 2 * LOCK_MIN_AGE_S
    os.utime(path, (old, old))
    holder = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the running build
        assert prune_local(PrunePolicy(dry_run=True)) == []
        assert prune_local(PrunePolicy()) == []
        # Taken between the listing and the removal: kept, not an error.
        from rtbuild._observe import local_state

        with monkeypatch.context() as patched:
            patched.setattr(local_state, "_held", lambda _path: False)
            (item,) = prune_local(PrunePolicy())
        assert (item.removed, item.error, item.size) == (False, None, 0) and "; kept: " in item.reason
        assert path.exists()
    finally:
        os.close(holder)
    # Released (the build was killed): now it goes.
    assert [(item.kind, item.removed, item.error) for item in prune_local(PrunePolicy())] == [("lock", True, None)]
    assert not path.exists()
