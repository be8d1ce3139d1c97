"""A Docker daemon that dies mid-build: a second dockerd in its own network namespace
(started in the host namespace it would remove the shared docker0 bridge), killed with
SIGKILL while a RUN step runs. rtbuild says the engine went away, with a hint."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine
DOCKER = shutil.which("docker", path="/usr/bin") or "docker"


def _need(ok: bool, message: str) -> None:
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)


class SecondDaemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "sock"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        pid = self.root / "pid"
        pid.unlink(missing_ok=True)  # a daemon killed uncleanly leaves its pid file
        log = open(self.root / "log", "ab")  # noqa: SIM115 - kept open for the daemon
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--net",
                "dockerd",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(pid),
                "-H",
                self.host,
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        for _ in range(120):
            if self._docker("info", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"second dockerd did not start: {(self.root / 'log').read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # unshare and dockerd
            self.proc.wait()

    def kill_leftovers(self) -> None:
        """containerd, shims and build containers this daemon started (found by its root)."""
        import psutil

        for process in psutil.process_iter(["cmdline"]):
            if str(self.root) in " ".join(process.info["cmdline"] or []):
                with contextlib.suppress(psutil.Error):
                    process.kill()

    def _docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [DOCKER, *args],
            env={**os.environ, "DOCKER_HOST": self.host},
            capture_output=True,
            check=check,
            timeout=120,
        )

    def cleanup(self) -> None:
        self.kill()
        self.kill_leftovers()
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(self.root))), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def second_daemon(docker_engine: str) -> Iterator[SecondDaemon]:
    _need(os.geteuid() == 0, "a second dockerd needs root")
    _need(bool(shutil.which("dockerd")) and bool(shutil.which("unshare")), "dockerd and unshare are needed")
    daemon = SecondDaemon(Path(tempfile.mkdtemp(prefix="rtbd-", dir="/tmp")))  # short: unix socket paths
    try:
        daemon.start()
        saved = subprocess.run([docker_engine, "save", "busybox:latest"], capture_output=True, check=True).stdout
        subprocess.run(
            [docker_engine, "load"],
            input=saved,
            env={**os.environ, "DOCKER_HOST": daemon.host},
            capture_output=True,
            check=True,
            timeout=120,
        )
        yield daemon
    finally:
        daemon.cleanup()


def test_a_step_on_an_engine_without_a_bridge_blames_the_engine(second_daemon: SecondDaemon, tmp_path: Path) -> None:
    """This daemon runs with --bridge none (as one whose docker0 was removed): a RUN that
    asks for the default network fails in the engine, with no exit code. It had no hint."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN true\n")
    env = {**os.environ, "DOCKER_HOST": second_daemon.host, "XDG_STATE_HOME": str(tmp_path / "state")}
    out = subprocess.run(
        [h.RTBUILD, "build", str(ctx), "-t", "rtbuild-test/nobridge:1", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr
    document = json.loads(out.stdout)
    assert document["error"] == "BuildFailedError" and document["step"] == "RUN true"
    assert "network bridge not found" in document["message"]
    assert "--network=host" in document["hint"] and "bridge" in document["hint"]
    assert "Traceback" not in out.stderr


def test_daemon_killed_mid_build(second_daemon: SecondDaemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo started-sleeping-{os.getpid()} && sleep 300\n")
    env = {**os.environ, "DOCKER_HOST": second_daemon.host, "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen(
        # --bridge none: the RUN step gets no network.
        [h.RTBUILD, "build", str(ctx), "-t", "rtbuild-test/dies:1", "--extra=--network=none", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "started-sleeping" in line and "RUN" not in line:
            break
    else:
        raise AssertionError("the build never reached its RUN step")
    second_daemon.kill()
    out, _err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    document = json.loads(out)
    assert document["error"] == "EngineUnavailableError"
    assert "went away during the build" in document["message"]
    assert "start it again" in document["hint"]
    assert "cannot write" not in document["message"]
