"""An engine at an ``ssh://`` address works as the docker CLI's does.

The engine is the real dockerd, reached through a real OpenSSH server on 127.0.0.1 (a
host key and an authorized key made for the test, its own config) that runs
``docker system dial-stdio`` for each connection, as any remote engine host does. The
client side is the real ``ssh``, given the test's config (``-F``) by a wrapper first on
PATH, as a user's ``~/.ssh/config`` would: the docker CLI that rtbuild runs and rtbuild's
own engine calls (through its local socket whose connections are ``ssh`` sessions, as the
CLI's are) both go through it. Before, every rtbuild call to such an engine failed with
"Install paramiko package to enable ssh:// support" while the docker CLI itself worked.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import psutil
import pytest
from _processes import step_processes_running

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
__all__ = ["context", "images", "isolated_dirs"]  # fixtures, re-exported for pytest

SSHD = "/usr/sbin/sshd"


@dataclass
class SSHEngine:
    host: str  # ssh://root@127.0.0.1:PORT
    port: int
    env: dict[str, str]  # PATH with the ssh wrapper first
    log: Path


def _missing(what: str) -> None:
    message = f"{what} (run `make engine` / scripts/engine.sh as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dial_processes(port: int) -> list[str]:
    """Command lines of this test's ssh clients (``-p PORT``) and of the engine side's
    ``docker system dial-stdio`` sessions that are still running."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in argv if a)
        if ("ssh" in text and f"-p {port}" in text) or "dial-stdio" in text:
            found.append(text)
    return found


@pytest.fixture(scope="module")
def ssh_engine(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHEngine]:
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh") is None:
        _missing("no OpenSSH server or client (openssh-server, openssh-client)")
    root = tmp_path_factory.mktemp("sshd")
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
    port = _free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'client.pub'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
    )
    (root / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {root / 'client'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n"
        f"  UserKnownHostsFile {root / 'known_hosts'}\n  BatchMode yes\n"
    )
    host_key = (root / "host.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {root / "ssh_config"} "$@"\n')
    wrapper.chmod(0o755)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = root / "sshd.log"
    # -D: in the foreground, so the fixture owns it; -e: its log to the file.
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stderr=log.open("wb"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "RTBUILD_"))}
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"
    engine = SSHEngine(f"ssh://root@127.0.0.1:{port}", port, env, log)
    deadline = time.monotonic() + 15
    while True:
        probe = subprocess.run(
            [docker_engine, "version", "--format", "{{.Server.Version}}"],
            env={**env, "DOCKER_HOST": engine.host},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode == 0:
            break
        if time.monotonic() > deadline or sshd.poll() is not None:
            sshd.kill()
            pytest.fail(f"the docker CLI cannot reach the engine over ssh: {probe.stderr}\n{log.read_text()}")
        time.sleep(0.2)
    yield engine
    sshd.terminate()
    sshd.wait(timeout=10)


def _rtbuild(engine: SSHEngine, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**engine.env, "DOCKER_HOST": engine.host, **extra}
    return subprocess.run([h.RTBUILD, *args], env=env, capture_output=True, text=True, timeout=240)


def _forwarder_dirs(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.glob("rtbuild-ssh-*"))


def _settled(port: int) -> list[str]:
    """What is left of the ssh sessions once they had a moment to close."""
    deadline = time.monotonic() + 10
    while (left := _dial_processes(port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_build_noop_exists_and_prune_over_ssh(
    images: h.Images, context: Path, ssh_engine: SSHEngine, tmp_path: Path
) -> None:
    tag = images.tag("1")
    ssh_engine.env["TMPDIR"] = str(tmp_path)
    # Its own content: an image another test builds from the same context is the same image,
    # and its tagging there (a test on the other worker) would make this one the newest.
    own = f"GREETING={uuid.uuid4().hex}"
    first = _rtbuild(ssh_engine, "build", str(context), "-t", tag, "--build-arg", own, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["cached"] is False
    built = h.inspect(images.cli, tag)  # on the engine behind the ssh server
    assert built is not None and built["Config"]["Labels"]["org.rtbuild.input-digest"]

    again = _rtbuild(ssh_engine, "build", str(context), "-t", tag, "--build-arg", own, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cached"] is True  # the no-op check asked over ssh

    assert _rtbuild(ssh_engine, "exists", tag, "--no-pull").returncode == 0
    absent = _rtbuild(ssh_engine, "exists", f"{images.repo}:absent", "--no-pull")
    assert absent.returncode == 1, absent.stderr

    fresh = f"GREETING={uuid.uuid4().hex}"  # not in BuildKit's cache: the newest image
    newer = _rtbuild(ssh_engine, "build", str(context), "-t", images.tag("2"), "--build-arg", fresh)
    assert newer.returncode == 0, newer.stderr
    pruned = _rtbuild(ssh_engine, "prune", "--keep", "1", "--repo", images.repo, "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert [(i["name"], i["removed"]) for i in json.loads(pruned.stdout)["items"]] == [(tag, True)]
    assert h.inspect(images.cli, tag) is None and h.inspect(images.cli, images.tag("2")) is not None
    # Every ssh client rtbuild or its docker CLI started has ended, and so has every
    # dial-stdio session on the engine's side.
    assert _settled(ssh_engine.port) == []
    accepted = ssh_engine.log.read_text().count("Accepted publickey")
    assert accepted >= 4, ssh_engine.log.read_text()[-2000:]
    assert _forwarder_dirs(tmp_path) == []  # each rtbuild removed its local socket's directory
    del ssh_engine.env["TMPDIR"]


def test_an_ssh_host_that_refuses_is_an_unavailable_engine(ssh_engine: SSHEngine, context: Path) -> None:
    closed = f"ssh://root@127.0.0.1:{_free_port()}"  # nothing listens there
    proc = _rtbuild(ssh_engine, "exists", "busybox:latest", "--no-pull", DOCKER_HOST=closed)
    assert proc.returncode == 3, proc.stderr  # could not tell
    assert "Traceback" not in proc.stderr
    assert f"cannot reach the Docker engine at {closed} (set by DOCKER_HOST)" in proc.stderr
    assert "(ssh: connect to host 127.0.0.1 port" in proc.stderr and "Connection refused" in proc.stderr  # ssh's why
    assert f"`ssh -p {closed.rsplit(':', 1)[1]} root@127.0.0.1 docker system dial-stdio`" in proc.stderr  # the hint
    built = _rtbuild(ssh_engine, "build", str(context), "-t", "rt-test/never:1", "--json", DOCKER_HOST=closed)
    assert built.returncode == 1, built.stderr
    error = json.loads(built.stdout)
    assert error["error"] == "EngineUnavailableError" and closed in error["message"]


def test_a_killed_build_over_ssh_leaves_no_ssh_session_or_run_step(
    images: h.Images, context: Path, ssh_engine: SSHEngine, tmp_path: Path
) -> None:
    nonce = uuid.uuid4().hex
    (context / "Dockerfile").write_text(
        f"FROM busybox:latest\nRUN echo started-sleeping {nonce} && NONCE={nonce} sleep 300\n"
    )
    env = {**ssh_engine.env, "DOCKER_HOST": ssh_engine.host, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [h.RTBUILD, "build", str(context), "-t", images.tag()], env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "started-sleeping" in line and "RUN" not in line:
            break
    else:
        raise AssertionError(f"the build never reached its RUN step (exit {proc.wait()})")
    steps = [psutil.Process(pid) for pid in step_processes_running(nonce, "sleep")]
    assert _dial_processes(ssh_engine.port)  # the docker CLI's session, while it builds
    proc.kill()
    proc.wait(timeout=30)
    assert _settled(ssh_engine.port) == []
    _gone, alive = psutil.wait_procs(steps, timeout=30)
    assert not alive, f"the RUN step outlived the build: {[s.cmdline() for s in alive]}"
    # kill -9 left the local socket's directory; the next rtbuild on an ssh engine removes it.
    left = _forwarder_dirs(tmp_path)
    assert len(left) == 1, left
    after = _rtbuild(ssh_engine, "exists", "busybox:latest", "--no-pull", TMPDIR=str(tmp_path))
    assert after.returncode == 0, after.stderr
    assert _forwarder_dirs(tmp_path) == []


@pytest.mark.registry
def test_push_and_pull_over_ssh(images: h.Images, context: Path, ssh_engine: SSHEngine, registry: Any) -> None:
    image = f"{registry.host}/rt-test/ssh-engine:{uuid.uuid4().hex[:10]}"
    try:
        pushed = _rtbuild(ssh_engine, "build", str(context), "-t", image, "--push", "--json")
        assert pushed.returncode == 0, pushed.stderr
        assert json.loads(pushed.stdout)["details"].get("pushed") is True, pushed.stdout
        h.docker(images.cli, "image", "rm", image)
        pulled = _rtbuild(ssh_engine, "exists", image, "--pull")
        assert pulled.returncode == 0, pulled.stderr
        assert h.inspect(images.cli, image) is not None  # pulled onto the engine behind the ssh server
        assert _settled(ssh_engine.port) == []
    finally:
        h.docker(images.cli, "image", "rm", image, check=False)


def test_an_ssh_host_that_never_answers_is_given_up_on(ssh_engine: SSHEngine) -> None:
    """A host that takes the connection and then says nothing (a stuck sshd, a black-holing
    firewall): given up on after ssh's ConnectTimeout, as the docker CLI does, never a wait
    without end (before the local socket, rtbuild's own calls waited for ever)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"ssh://root@127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        proc = _rtbuild(ssh_engine, "exists", "busybox:latest", "--no-pull", DOCKER_HOST=host)
        took = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    assert took < 90, took
    assert f"cannot reach the Docker engine at {host}" in proc.stderr
    # rtbuild's own read timeout or ssh's ConnectTimeout (both 30 s), whichever comes first.
    assert "timed out" in proc.stderr, proc.stderr
