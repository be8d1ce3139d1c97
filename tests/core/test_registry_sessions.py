"""A RegistryClient keeps one connection per host for its requests (oci/_sessions.py).

Each request made an httpx client of its own: a new TCP connection (and TLS handshake)
and a new SSL context (its CA bundle load about 35 ms of CPU) per registry call. The
multi-platform no-op check (7 calls) took 0.35-0.8 s, nearly all of it there; now ~50 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from _processes import exit_code_in_fork
from rtbuild.oci import RegistryClient, parse_reference


class _Counting(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0

    def get_request(self) -> Any:
        self.connections += 1
        return super().get_request()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self) -> None:
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Counting]:
    found = _Counting()
    thread = threading.Thread(target=found.serve_forever, daemon=True)
    thread.start()
    yield found
    found.shutdown()
    found.server_close()


def _get(client: RegistryClient, host: str) -> int:
    return client.request(parse_reference(f"{host}/team/app:1"), "GET", "/v2/team/app/manifests/1").status_code


def test_requests_of_one_client_share_a_connection(server: _Counting) -> None:
    host = f"127.0.0.1:{server.server_address[1]}"
    client = RegistryClient()
    assert [_get(client, host) for _ in range(7)] == [200] * 7
    assert server.connections == 1


def test_a_closed_connection_is_replaced_and_threads_do_not_share_one(server: _Counting) -> None:
    host = f"127.0.0.1:{server.server_address[1]}"
    client = RegistryClient()
    assert _get(client, host) == 200
    client._client(host).close()  # as a request past its deadline closes it
    assert _get(client, host) == 200
    assert server.connections == 2
    answers: list[int] = []
    worker = threading.Thread(target=lambda: answers.append(_get(client, host)))
    worker.start()
    worker.join(30)
    assert answers == [200] and server.connections == 3


def test_a_forked_child_opens_its_own_connection(server: _Counting) -> None:
    host = f"127.0.0.1:{server.server_address[1]}"
    client = RegistryClient()
    assert _get(client, host) == 200
    parent = client._client(host)

    def child() -> int:
        return 0 if client._client(host) is not parent and _get(client, host) == 200 else 1

    assert exit_code_in_fork(child) == 0
    assert client._client(host) is parent
