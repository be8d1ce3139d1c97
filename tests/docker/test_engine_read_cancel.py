"""Ctrl-C/SIGTERM in build-many ends a worker's read from an engine that never answers.

build-many's workers never see the interrupt. An engine that takes the connection and never
answers (a hung dockerd) held each worker in its socket read for the whole 30 s timeout:
SIGTERM with 4 jobs exited after 27.3 s (measured). The batch's cancel callbacks now shut
the socket down, and the read ends at once.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from rtbuild._framework.interrupts import cancel_all
from rtbuild.errors import EngineUnavailableError
from rtbuild_docker.engine import EngineAPI


def test_a_cancel_ends_the_read_from_a_hung_engine(tmp_path: Path) -> None:
    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)  # the kernel accepts; nothing ever answers
    raised: list[BaseException] = []

    def ping() -> None:
        try:
            EngineAPI(f"unix://{path}").ping()
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    worker = threading.Thread(target=ping, daemon=True)
    try:
        worker.start()
        time.sleep(0.5)  # the request is sent and its answer awaited
        cancel_all()
        worker.join(15)
        assert not worker.is_alive(), "the read went on after the cancel"
    finally:
        server.close()
    assert len(raised) == 1 and isinstance(raised[0], EngineUnavailableError), raised


def test_an_answer_read_after_the_call_is_not_cut_by_a_later_cancel(tmp_path: Path) -> None:
    path = tmp_path / "ok.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nOK")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        EngineAPI(f"unix://{path}").ping()
        cancel_all()  # the callback went with the call
    finally:
        server.close()
