"""A scripted HTTP stand-in for a registry, for the Kubernetes builder's registry calls
(``RegistryOps``): each test answers requests with a function and reads what was sent.

It listens on a loopback address only (127.0.0.1 by default, 127.0.0.2 for "another host").
"""

from __future__ import annotations

import base64
import http.server
import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Handler = Callable[["Request"], tuple[int, bytes | dict[str, Any], dict[str, str]] | None]


@dataclass
class Request:
    host: str
    port: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    raw: http.server.BaseHTTPRequestHandler = field(repr=False)


@dataclass
class Scripted:
    host: str
    port: int
    log: list[Request]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def scripted(handler: Handler, host: str = "127.0.0.1") -> Iterator[Scripted]:
    """Serve ``handler`` (returning ``(status, body, headers)``, or ``None`` when it wrote
    the answer itself) until the block ends."""
    log: list[Request] = []

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                host, self.server.server_address[1], self.command, self.path, dict(self.headers), body, self
            )
            log.append(request)
            answer = handler(request)
            if answer is not None:
                reply(self, *answer)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _do

    server = _Server((host, 0), H)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Scripted(host, server.server_address[1], log)
    finally:
        server.shutdown()
        server.server_close()


def reply(
    handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes | dict[str, Any], headers: dict[str, str]
) -> None:
    headers = dict(headers)
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    headers.setdefault("Content-Length", str(len(body)))
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def docker_config(directory: Path, registry: str, user: str = "robot", password: str = "S3cret-Passw0rd") -> str:
    """A docker config dir with Basic credentials for ``registry``; the header they make."""
    directory.mkdir(parents=True, exist_ok=True)
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {registry: {"auth": pair}}}))
    return f"Basic {pair}"
