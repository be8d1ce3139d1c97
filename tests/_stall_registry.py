"""A loopback registry stub that misbehaves on purpose, for the docker and podman hang tests.

``StallRegistry("manifest")`` answers ``/v2/`` and the manifest (HEAD and GET) of any
repository, then on a blob request either never answers (``blobs="stall"``) or drips a
few bytes of it now and then, forever (``blobs="drip"``). ``StallRegistry("silent")``
accepts connections and never answers anything. It records when a blob connection is
closed by its client: that is how a test sees the engine cancel a pull; and when the
first blob was asked for (the pull is under way).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_LAYER_SIZE = 100_000


def _manifest() -> bytes:
    # A layer digest of its own per stub: the engine shares a download among pulls of
    # the same digest, so one test's stalled transfer must not serve another test.
    layer = "sha256:" + hashlib.sha256(os.urandom(16)).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "author": layer, "rootfs": {"type": "layers", "diff_ids": [layer]}}
    ).encode()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            },
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": _LAYER_SIZE, "digest": layer}
            ],
        }
    ).encode()


def bounded(call: Callable[[], object], within: float, action: str) -> BaseException | None:
    """Run ``call`` in a thread; what it raised, or a test failure if it is still running after
    ``within`` seconds (before the fixes a stalled ``action``, a pull or a push, never returned)."""
    import pytest

    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(within)
    if thread.is_alive():
        pytest.fail(f"the {action} was still running after {within} s")
    return raised[0] if raised else None


class StallRegistry:
    """See the module doc. ``host`` is ``127.0.0.1:PORT``; call :meth:`close` when done."""

    def __init__(self, mode: str = "manifest", blobs: str = "stall", uploads: str = "stall") -> None:
        self.mode, self.blobs, self.uploads = mode, blobs, uploads
        self.stop = threading.Event()
        #: Set when a client closed a blob connection we were stalling or dripping.
        self.blob_closed = threading.Event()
        #: Set once a client asks for a blob: the pull is under way (and stalled).
        self.blob_requested = threading.Event()
        self.blob_requests = 0
        self.requests: list[str] = []
        self.manifest = _manifest()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                stub._handle(self, body=False)

            def do_GET(self) -> None:
                stub._handle(self, body=True)

            # A push: POST starts a blob upload, PATCH and PUT send it.
            do_POST = do_PATCH = do_PUT = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # "silent": the listening socket accepts (the kernel does, through the backlog)
        # and nothing ever answers.
        if mode != "silent":
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = handler.path.split("?", 1)[0]
        self.requests.append(f"{handler.command} {path}")
        if path == "/v2/" or path == "/v2":
            self._answer(handler, b"{}", "application/json", body)
        elif "/manifests/" in path:
            digest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
            ctype = "application/vnd.docker.distribution.manifest.v2+json"
            self._answer(handler, self.manifest, ctype, body, {"Docker-Content-Digest": digest})
        elif "/blobs/uploads/" in path:
            self._upload(handler, path)
        elif "/blobs/" in path and handler.command == "HEAD":
            # A push asks whether the registry has a layer before uploading it: it has not.
            self._answer(handler, b"", "application/json", body, status=404)
        elif "/blobs/" in path:
            self.blob_requests += 1
            self.blob_requested.set()
            self._stall(handler)
        else:
            self._answer(handler, b"{}", "application/json", body, status=404)

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        data: bytes,
        ctype: str,
        body: bool,
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def resume(self) -> None:
        """Stalled blob requests start dripping and uploads are read at full speed (an
        engine whose pull or push was cancelled then closes them: it notices only when a
        read or write returns; one still pushing sends the rest and waits for an answer)."""
        self.blobs = "drip"
        if self.uploads in ("stall", "drip"):
            self.uploads = "drain"

    def _stall(self, handler: BaseHTTPRequestHandler) -> None:
        conn = handler.connection
        sent = -1  # -1: no headers sent yet
        while not self.stop.is_set():
            readable, _, _ = select.select([conn], [], [], 0.3)
            try:
                if readable and not conn.recv(1):
                    self.blob_closed.set()  # the client went away
                    return
                if self.blobs != "drip" or sent >= _LAYER_SIZE - 2_000:
                    continue
                if sent < 0:
                    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {_LAYER_SIZE}"
                    conn.sendall(head.encode() + b"\r\n\r\n")
                    sent = 0
                conn.sendall(b"\0" * 1_500)  # 1.5 % of the layer: the engine reports it
            except OSError:
                self.blob_closed.set()
                return
            sent += 1_500
            time.sleep(0.7)

    def _upload(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        self.blob_requests += 1
        self.blob_requested.set()
        if self.uploads == "unanswered":
            self._stall(handler)
        elif handler.command == "POST":
            location = f"{path.rstrip('/')}/{uuid.uuid4()}"
            self._answer(handler, b"", "text/plain", True, {"Location": location, "Range": "0-0"}, status=202)
        else:
            self._drain(handler)

    def _drain(self, handler: BaseHTTPRequestHandler) -> None:
        """Take an upload's data: none (``stall``), about 1 MiB/s (``drip``) or, after
        :meth:`resume`, all at once; never answer it."""
        conn = handler.connection
        while not self.stop.is_set():
            readable, _, _ = select.select([conn], [], [], 0.3)
            if not readable or self.uploads == "stall":
                continue
            try:
                data = conn.recv(64 * 1024)
            except OSError:
                data = b""
            if not data:
                self.blob_closed.set()  # the client went away
                return
            if self.uploads == "drip":
                time.sleep(0.06)

    def close(self) -> None:
        self.stop.set()
        if self.mode != "silent":
            self._server.shutdown()
        self._server.server_close()


__all__ = ["StallRegistry"]
