"""A Docker daemon that dies mid-build: a second dockerd in its own network namespace
(started in the host namespace it would remove the shared docker0 bridge), killed with
SIGKILL while a RUN step runs. rtbuild says the engine went away, with a hint. And a
connection that drops mid-build while the engine stays up (a proxy in front of it)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def freezer(second_daemon: SecondDaemon) -> Iterator[Callable[[], None]]:
    """Freezes the second daemon (SIGSTOP: its socket takes connections, nothing answers);
    thawed (SIGCONT) at teardown, whatever the test did."""
    frozen: list[int] = []

    def freeze() -> None:
        assert second_daemon.proc is not None
        os.kill(second_daemon.proc.pid, signal.SIGSTOP)
        frozen.append(second_daemon.proc.pid)

    try:
        yield freeze
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _build_until_run(daemon: SecondDaemon, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo frozen-{uuid.uuid4().hex[:8]} && sleep 300\n")
    env = {**os.environ, "DOCKER_HOST": daemon.host, "XDG_STATE_HOME": str(tmp_path / "s")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "c")
    proc = subprocess.Popen(
        [h.RTBUILD, "build", str(ctx), "-t", "rtbuild-test/frozen:1", "--extra=--network=none", "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "frozen-" in line and "RUN" not in line:
            return proc, ctx
    raise AssertionError("the build never reached its RUN step")


def _clients_of(ctx: Path) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if str(ctx) in " ".join(p.info["cmdline"] or [])]


def test_a_build_timeout_on_a_frozen_engine_blames_the_engine(
    second_daemon: SecondDaemon, freezer: Callable[[], None], tmp_path: Path
) -> None:
    """A frozen daemon held the stop for its whole SIGINT and SIGTERM waits (10 s) and the error
    blamed the build's length ('ran longer than build_timeout'): the client is killed once
    the engine does not answer a ping, and the error says the engine stopped answering."""
    proc, ctx = _build_until_run(second_daemon, tmp_path, "--build-timeout", "5")
    freezer()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    document = json.loads(out)
    assert document["error"] == "EngineUnavailableError", document
    assert "stopped answering" in document["message"] and "build_timeout 5 s" in document["message"]
    assert "not frozen" in document["hint"] and "systemctl status docker" in document["hint"]
    assert not _clients_of(ctx), "the docker client outlived rtbuild"


def test_ctrl_c_on_a_frozen_engine_says_so(
    second_daemon: SecondDaemon, freezer: Callable[[], None], tmp_path: Path
) -> None:
    proc, ctx = _build_until_run(second_daemon, tmp_path)
    freezer()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopped answering" in err and "not frozen" in err
    assert not _clients_of(ctx), "the docker client outlived rtbuild"


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


class DroppingProxy:
    """A unix-socket proxy in front of the real engine that can cut every connection at once,
    the engine staying up: what a client sees when dockerd restarts behind systemd's
    docker.socket, or when a socket proxy or ssh session in between goes."""

    def __init__(self, path: Path, upstream: str) -> None:
        import socket
        import threading

        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(64)
        self.host, self.upstream = f"unix://{path}", upstream
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.upstream)
            with self.lock:
                self.conns += [client, engine]
            for a, b in ((client, engine), (engine, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: Any, b: Any) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for end in (a, b):
                with contextlib.suppress(OSError):
                    end.shutdown(2)

    def drop(self) -> None:
        with self.lock:
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(2)
            self.conns.clear()

    def stop_listening(self) -> None:
        """Refuse new connections, as a dead daemon's socket (shutdown first: a bare close
        leaves the accept blocked in the other thread taking connections)."""
        with contextlib.suppress(OSError):
            self.server.shutdown(2)
        self.server.close()

    def close(self) -> None:
        self.stop_listening()
        self.drop()


def test_a_connection_dropped_mid_build_while_the_engine_stays_up(docker_engine: str, tmp_path: Path) -> None:
    """The engine answered rtbuild's check right after, so the build's error was the client's
    last line, "cannot write .../iid because server did not provide an image ID", with the
    catch-all hint: nothing said the connection had dropped."""
    from _processes import step_processes_running

    proxy = DroppingProxy(tmp_path / "p.sock", "/var/run/docker.sock")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    nonce = f"NONCE={uuid.uuid4().hex}"
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nARG NONCE\nRUN echo started-$NONCE && sleep 300\n")
    tag = f"rtbuild-test/dropped:{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DOCKER_HOST": proxy.host, "XDG_STATE_HOME": str(tmp_path / "s")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "c")
    try:
        proc = subprocess.Popen(
            [h.RTBUILD, "build", str(ctx), "-t", tag, "--build-arg", nonce, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if "started-" in line and "RUN" not in line:
                break
        steps = step_processes_running(nonce, "sleep")
        proxy.drop()
        out, _err = proc.communicate(timeout=120)
    finally:
        proxy.close()
    assert proc.returncode == 1
    document = json.loads(out)
    assert document["error"] == "EngineUnavailableError"
    assert "dropped during the build (the engine answers again now)" in document["message"]
    assert "nothing was tagged" in document["hint"]
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") for pid in steps) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in steps), "the RUN step outlived the build"
    assert subprocess.run([docker_engine, "image", "inspect", tag], capture_output=True).returncode != 0


def test_a_step_that_prints_the_same_words_is_still_its_own_failure(docker_engine: str, tmp_path: Path) -> None:
    """A step's own output may hold what the client says when its connection drops."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN echo 'read: unexpected EOF' && exit 3\n")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": str(tmp_path / "c")}
    env.pop("DOCKER_HOST", None)
    out = subprocess.run(
        [h.RTBUILD, "build", str(ctx), "-t", "rtbuild-test/eof:1", "--json", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    document = json.loads(out.stdout)
    assert document["error"] == "BuildFailedError" and "failed with exit code 3" in document["message"]


@pytest.mark.parametrize("engine_stays", [True, False], ids=["connection-dropped", "engine-gone"])
def test_a_push_whose_engine_stream_breaks_off(
    docker_engine: str, registry: Any, tmp_path: Path, engine_stays: bool
) -> None:
    """The engine took the push, then its stream broke off: that read 'cannot reach the Docker
    engine ... Response ended prematurely', step 'connect to engine', with no log tail. (The
    engine going away: the proxy also stops taking connections, as a dead daemon's socket.)"""
    import io
    import tarfile

    import rtbuild
    from rtbuild._framework.progress import use_reporter
    from rtbuild.errors import EngineUnavailableError
    from rtbuild_docker.builder import DockerBuilder

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:  # random: neither gzip nor a cache shortens it
        info = tarfile.TarInfo("blob")
        info.size = 32 * 1024 * 1024
        tar.addfile(info, io.BytesIO(os.urandom(info.size)))
    image = f"{registry.host}/rt-test/broken-push:{uuid.uuid4().hex[:10]}"
    subprocess.run([docker_engine, "import", "-", image], input=raw.getvalue(), capture_output=True, check=True)
    proxy = DroppingProxy(tmp_path / "p.sock", "/var/run/docker.sock")

    class BreakAtFirstProgress(rtbuild.Reporter):
        def event(self, kind: str, **fields: Any) -> None:
            if kind == "push_progress" and proxy.conns:
                if not engine_stays:
                    proxy.stop_listening()
                proxy.drop()

    try:
        with use_reporter(BreakAtFirstProgress()), pytest.raises(EngineUnavailableError) as info:
            DockerBuilder(docker_host=proxy.host).push(image)
    finally:
        proxy.close()
        subprocess.run([docker_engine, "rmi", image], capture_output=True, check=False)
    error = info.value
    assert error.step == "push"
    if engine_stays:
        assert f"dropped during the push of {image} (the engine answers again now)" in error.message
    else:
        assert f"went away during the push of {image} (it no longer answers)" in error.message
        assert "start it again" in (error.hint or "")
    assert error.log_tail and any("Pushing" in line or "Preparing" in line for line in error.log_tail)
    # One line per layer and status, not one per byte tick ("Pushing" 20 times was the whole tail).
    assert all(a != b for a, b in zip(error.log_tail, error.log_tail[1:], strict=False)), error.log_tail
