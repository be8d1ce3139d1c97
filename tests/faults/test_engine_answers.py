"""Engine answers mapped to what they mean (a stub engine on a unix socket), and build-log
rotation."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtbuild.enginekit import rotate_logs
from rtbuild.errors import AgentRuntimeBuildError, ConfigError, EngineUnavailableError
from rtbuild_docker.engine import EngineAPI


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """A fake engine answering each request with the next status in the list."""
    path = str(tmp_path / "e.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    statuses: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                status = statuses.pop(0) if statuses else 500
                body = b'{"message": "stub says no"}'
                conn.sendall(f"HTTP/1.0 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    threading.Thread(target=serve, daemon=True).start()
    yield f"unix://{path}", statuses
    server.close()


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (400, ConfigError, "invalid"),
        (409, AgentRuntimeBuildError, "conflict"),
        (500, EngineUnavailableError, "engine failed"),
    ],
)
def test_engine_statuses(engine: tuple[str, list[int]], status: int, kind: type, words: str) -> None:
    host, statuses = engine
    statuses.append(status)
    with pytest.raises(kind) as info:
        EngineAPI(host).inspect_image("busybox:latest")
    assert words in info.value.message and "stub says no" in info.value.message
    if status < 500:
        assert not isinstance(info.value, EngineUnavailableError)


def test_404_is_absent(engine: tuple[str, list[int]]) -> None:
    host, statuses = engine
    statuses.append(404)
    assert EngineAPI(host).inspect_image("busybox:latest") is None


def test_log_rotation_by_count_and_age(tmp_path: Path) -> None:
    now = time.time()
    for index in range(6):
        log = tmp_path / f"build-2026-{index}.log"
        log.write_text("x")
        os.utime(log, (now - index * 3600, now - index * 3600))
    (tmp_path / "other.txt").write_text("not a build log")
    rotate_logs(str(tmp_path), keep=4, max_age_days=None)
    assert sorted(p.name for p in tmp_path.glob("build-*.log")) == [f"build-2026-{i}.log" for i in range(4)]
    rotate_logs(str(tmp_path), keep=None, max_age_days=1.5 / 24)
    assert sorted(p.name for p in tmp_path.glob("build-*.log")) == ["build-2026-0.log", "build-2026-1.log"]
    assert (tmp_path / "other.txt").exists()


@pytest.fixture
def bad_socket(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A socket that takes connections and then, by the mode put in the list: holds them
    without a word ("silent"), resets them ("reset") or answers what is not HTTP ("garbage")."""
    path = str(tmp_path / "bad.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    mode: list[str] = []
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if mode[0] == "silent":
                held.append(conn)
                continue
            if mode[0] == "garbage":
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"unix://{path}", mode
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("mode", ["silent", "reset", "garbage"])
def test_an_engine_that_takes_the_connection_but_does_not_answer(bad_socket: tuple[str, list[str]], mode: str) -> None:
    """A hung daemon (or another service at DOCKER_HOST) was told to be started."""
    host, modes = bad_socket
    modes.append(mode)
    with pytest.raises(EngineUnavailableError) as info:
        EngineAPI(host, timeout=0.5).inspect_image("busybox:latest")
    assert info.value.step == "connect to engine"
    assert "does not answer as a Docker engine" in (info.value.hint or ""), info.value.message
    assert "start the daemon" not in (info.value.hint or "")


def test_an_engine_that_is_not_there_is_to_be_started(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError) as info:
        EngineAPI(f"unix://{tmp_path / 'none.sock'}", timeout=0.5).inspect_image("busybox:latest")
    assert (info.value.hint or "").startswith("start the daemon")


def test_build_many_asks_an_engine_that_never_answered_once(bad_socket: tuple[str, list[str]], tmp_path: Path) -> None:
    """A hung engine: each build of a batch waited its own 30 s for it (4 builds with -j 1:
    two minutes; 100 builds with -j 4: about 13). After the first such wait the batch's other
    builds of that builder fail at once, naming the build that waited."""
    import json
    import subprocess
    import sys

    host, modes = bad_socket
    modes.append("silent")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox:latest\n")
    batch = tmp_path / "many.toml"
    batch.write_text("".join(f'[[build]]\npath = "ctx"\ntags = ["rtbuild-test/hung:{n}"]\n' for n in range(4)))
    env = {**os.environ, "DOCKER_HOST": host, "XDG_CACHE_HOME": str(tmp_path / "c"), "XDG_STATE_HOME": str(tmp_path)}
    out = subprocess.run(
        [str(Path(sys.executable).with_name("rtbuild")), "build-many", str(batch), "-j", "1", "--json", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert [b["status"] for b in report["builds"]] == ["failed"] * 4
    first, *rest = (b["error"] for b in report["builds"])
    assert first["error"] == "EngineUnavailableError" and "timed out" in first["message"]
    for error in rest:
        assert error["error"] == "EngineUnavailableError" and error["step"] == "connect to engine"
        assert error["message"].startswith("not started: the engine did not answer build 1 (")
        assert error["hint"] == first["hint"]
