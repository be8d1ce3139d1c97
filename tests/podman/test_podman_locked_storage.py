"""Podman's storage locked by another podman process while a build is stopped: rtbuild
exits with the signal's code at once, and what it could not clean up the next build does.

Runs on a storage of its own (CONTAINERS_STORAGE_CONF, vfs under the test's directory),
so the lock held here blocks no other test's podman."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _podman_support import PODMAN, write_context

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


@pytest.fixture
def storage_env(tmp_path: Path, podman_cli: str) -> dict[str, str]:
    """The environment of a podman using its own storage, holding the shared busybox base."""
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{tmp_path / "run"}"\ngraphroot = "{tmp_path / "graph"}"\n')
    base = tmp_path / "base.tar"
    subprocess.run([PODMAN, "save", "-o", str(base), "docker.io/rtbuild/busybox:latest"], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTBUILD_", "DOCKER_"))}
    (tmp_path / "tmp").mkdir()
    env.update(
        CONTAINERS_STORAGE_CONF=str(conf),
        TMPDIR=str(tmp_path / "tmp"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    subprocess.run([PODMAN, "load", "-i", str(base)], env=env, check=True, capture_output=True, timeout=120)
    return env  # the storage goes with tmp_path (vfs: plain directories, no mounts)


def _podman_build_running(tag: str) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(argv) > 1 and argv[0].endswith(b"podman") and argv[1] == b"build" and tag.encode() in argv:
                return True
    return False


def test_a_signal_while_the_storage_is_locked_exits_at_once_and_the_next_build_cleans_up(
    storage_env: dict[str, str], tmp_path: Path
) -> None:
    """podman build waits for the lock; SIGTERM stops it, then the clean-up's `podman info`
    waited for the lock too: rtbuild exited only after 60 s, with exit 1 ('`podman info` did
    not answer'), not 143, or when the other process let go (measured on podman 4.3.1)."""
    ctx = write_context(tmp_path / "ctx", "FROM docker.io/rtbuild/busybox:latest\nRUN echo built > /built\n")
    tag = f"localhost/rtbuild-test/locked:{uuid.uuid4().hex[:10]}"
    argv = [RTBUILD, "build", str(ctx), "-t", tag, "--builder", "podman", "--no-cache"]
    graph = tmp_path / "graph"
    locks = [
        os.open(graph / "vfs-images" / "images.lock", os.O_RDWR),
        os.open(graph / "vfs-layers" / "layers.lock", os.O_RDWR),
    ]
    try:
        for fd in locks:
            fcntl.lockf(fd, fcntl.LOCK_EX)  # what a podman process busy with the storage holds
        proc = subprocess.Popen(argv, env=storage_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(600):
                if _podman_build_running(tag) or proc.poll() is not None:
                    break
                time.sleep(0.1)
            assert _podman_build_running(tag), "podman build never started"
            time.sleep(1)  # podman is waiting for the lock
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(50)  # the old clean-up gave up after 60 s
            except subprocess.TimeoutExpired:
                pytest.fail("rtbuild still running 50 s after SIGTERM: the clean-up waits for the storage lock")
            stderr = proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert code == 128 + signal.SIGTERM, stderr
        assert "the next podman build removes them" in stderr
        kept = list((tmp_path / "tmp").glob("rtbuild-podman-*"))
        assert kept and all((path / ".rtbuild-owner").exists() for path in kept)
    finally:
        for fd in locks:
            os.close(fd)
    # The other process let go: the next build removes what the stopped one left, and builds.
    done = subprocess.run(argv, env=storage_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "killed podman build(s)" in done.stderr
    assert not list((tmp_path / "tmp").glob("rtbuild-podman-*"))
    listed = subprocess.run(
        [PODMAN, "ps", "-a", "--external", "--format", "{{.ID}}"], env=storage_env, capture_output=True, text=True
    )
    assert listed.stdout.strip() == ""
