"""A loopback registry stub for the Podman hang and orphan tests: it answers ``/v2/`` and
any manifest (HEAD and GET), then never answers a blob request (the connection stays open
until :meth:`StallRegistry.close`)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _manifest() -> bytes:
    # Digests of its own per stub, so no pull shares a download with another test's.
    layer = "sha256:" + hashlib.sha256(os.urandom(16)).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer]}})
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": "sha256:" + hashlib.sha256(config.encode()).hexdigest(),
            },
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 100_000, "digest": layer}
            ],
        }
    ).encode()


class StallRegistry:
    """``host`` is ``127.0.0.1:PORT``; ``blob_requested`` is set once a client asks for a
    blob (the pull is under way and stalled); call :meth:`close` when done."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.blob_requested = threading.Event()
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def _handle(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = handler.path.split("?", 1)[0]
        if "/blobs/" in path:
            self.blob_requested.set()
            self.stop.wait()  # never answer: the client must give up (or be killed)
            return
        if path in ("/v2", "/v2/"):
            payload, kind = b"{}", "application/json"
        elif "/manifests/" in path:
            payload, kind = self.manifest, "application/vnd.docker.distribution.manifest.v2+json"
        else:
            payload, kind = b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "application/json"
            handler.send_response(404)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if body:
                handler.wfile.write(payload)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(self.manifest).hexdigest())
        handler.send_header("Docker-Distribution-API-Version", "registry/2.0")
        handler.end_headers()
        if body:
            handler.wfile.write(payload)

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
