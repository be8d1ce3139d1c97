"""Ctrl-C/SIGTERM in build-many ends a push's wait for the Docker SDK's connection check.

Before a pull or push, the docker SDK client asks the engine for its API version. On an
engine that took the connection and never answered (a hung dockerd), a build-many worker
sat in that read for the SDK's whole 60 s timeout after the interrupt: the request's socket
is the SDK's, out of reach of the cancel callbacks that end the other engine reads. The
check now runs where the cancel can leave it, and the push is reported as stopped.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtbuild._framework.interrupts import cancel_all, cancel_scope
from rtbuild.errors import PushError
from rtbuild_docker import images


@pytest.fixture
def hung_engine(tmp_path: Path) -> Iterator[tuple[str, threading.Event]]:
    """A unix socket the kernel accepts on; nothing ever answers (a hung dockerd)."""
    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    accepted = threading.Event()

    def accept() -> None:
        conns = []  # kept open, never answered
        while True:
            try:
                conns.append(server.accept()[0])
            except OSError:
                return
            accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    images._clients.clear()
    try:
        yield f"unix://{path}", accepted
    finally:
        server.close()
        images._clients.clear()


def test_a_cancel_ends_the_push_s_wait_for_a_hung_engine(hung_engine: tuple[str, threading.Event]) -> None:
    host, accepted = hung_engine
    raised: list[BaseException] = []
    event = threading.Event()

    def push() -> None:
        with cancel_scope(event):
            try:
                images.push_image("127.0.0.1:5999/rt-test/hung:1", docker_host=host)
            except BaseException as exc:  # handed to the test
                raised.append(exc)

    worker = threading.Thread(target=push, daemon=True)
    worker.start()
    assert accepted.wait(30), "the SDK never connected"
    event.set()  # as build-many does: the scope's event, then the callbacks
    cancel_all()
    worker.join(20)  # a guard, not a timing: before the fix the SDK waited its 60 s
    assert not worker.is_alive(), "the connection check went on after the cancel"
    assert len(raised) == 1, raised
    error = raised[0]
    assert isinstance(error, PushError), repr(error)
    assert error.step == "push" and "stopped by the interrupt" in error.message, error.message


def test_a_cancel_ends_an_sdk_engine_read(hung_engine: tuple[str, threading.Event]) -> None:
    """TLS and ssh:// engines are read through the SDK's client: the same wait, the same end."""
    import docker
    from rtbuild_docker.engine import EngineAPI
    from rtbuild_docker.streamcancel import EngineCallStopped

    host, accepted = hung_engine
    api = EngineAPI(host)
    api._sdk = True  # as for a TLS host; the client below asks no version
    images._clients[(host, None)] = docker.DockerClient(base_url=host, version="1.41")
    raised: list[BaseException] = []
    event = threading.Event()

    def read() -> None:
        with cancel_scope(event):
            try:
                api.call("GET", "/_ping")
            except BaseException as exc:  # handed to the test
                raised.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    assert accepted.wait(30), "the SDK never connected"
    event.set()
    cancel_all()
    worker.join(20)  # a guard: before the fix the read waited its 30 s timeout
    assert not worker.is_alive(), "the read went on after the cancel"
    assert len(raised) == 1 and isinstance(raised[0], EngineCallStopped), raised
