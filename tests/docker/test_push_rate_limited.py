"""A registry answering 429 (too many requests) to a push: rtbuild pushes again after a pause.

dockerd gives up on a push at the first 429 and keeps the registry's Retry-After to itself:
a platform pushing many images at once to a registry with a request quota had builds fail
at once, with the hint to check that the registry accepts pushes.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import rtbuild_docker.pushretry as pushretry
from _registry_support import docker
from rtbuild._framework.progress import Reporter, use_reporter
from rtbuild.errors import PushError
from rtbuild_docker.builder import DockerBuilder


class _Events(Reporter):
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "warning":
            self.warnings.append(str(fields["message"]))


class _Limiting:
    """A loopback registry that answers every blob upload with 429 and Retry-After."""

    def __init__(self) -> None:
        self.uploads = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                self.wfile.write(body)

            def do_ANY(self) -> None:
                if int(self.headers.get("Content-Length") or 0):
                    self.rfile.read(int(self.headers["Content-Length"]))
                path = self.path.split("?", 1)[0]
                if path in ("/v2/", "/v2"):
                    return self._answer(200, b"{}")
                if "/blobs/uploads" in path and self.command == "POST":
                    stub.uploads += 1
                    error = {"errors": [{"code": "TOOMANYREQUESTS", "message": "rate limit exceeded"}]}
                    return self._answer(429, json.dumps(error).encode(), {"Retry-After": "1"})
                return self._answer(404, b'{"errors": [{"code": "BLOB_UNKNOWN", "message": "unknown"}]}')

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_ANY

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def limiting(docker_engine: str) -> Iterator[_Limiting]:
    stub = _Limiting()
    yield stub
    stub.close()


@pytest.mark.engine
@pytest.mark.registry
def test_a_push_turned_away_with_429_is_tried_again_then_explained(
    limiting: _Limiting, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr(pushretry, "BACKOFF_S", (0.1, 0.2))
    image = f"{limiting.host}/rt-test/limited:{uuid.uuid4().hex[:10]}"
    docker("tag", "busybox:latest", image)
    events = _Events()
    try:
        with use_reporter(events), pytest.raises(PushError) as info:
            DockerBuilder().push(image)
    finally:
        docker("rmi", image, check=False)
    error = info.value
    assert "toomanyrequests" in error.message and error.message.endswith("(refused 3 times, over 0.3 s)")
    assert error.hint and "HTTP 429" in error.hint and "--jobs" in error.hint and limiting.host in error.hint
    assert events.warnings == [
        f"registry {limiting.host} turned the push of {image} away (429 too many requests): pushing again in"
        f" {pause} s (attempt {n} of 3)"
        for pause, n in (("0.1", 2), ("0.2", 3))
    ]
    assert limiting.uploads >= 3  # the engine really pushed three times


def test_a_push_let_through_after_429s_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pushretry, "BACKOFF_S", (0.05, 0.05, 0.05))
    answers: list[BaseException | str] = [
        PushError("pushing r/a:1 to r failed: toomanyrequests: rate limit", step="push", hint="h"),
        PushError("pushing r/a:1 to r failed: received unexpected HTTP status: 429 Too Many Requests", step="push"),
        "sha256:pushed",
    ]

    def push() -> str:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    with use_reporter(_Events()):
        assert pushretry.push_with_backoff(push, "r.io/a:1") == "sha256:pushed"
    refused = PushError("pushing r/a:1 to r failed: denied", step="push", hint="log in")
    with use_reporter(_Events()), pytest.raises(PushError) as info:
        pushretry.push_with_backoff(lambda: (_ for _ in ()).throw(refused), "r.io/a:1")
    assert info.value is refused and refused.hint == "log in"  # other refusals: at once, as they were


def test_a_registry_failing_every_upload_is_named_in_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry answering 500 to every upload (a full disk): dockerd 20.10 retries each layer
    5 times (about 50 s) and then says only 'received unexpected HTTP status: 500 Internal
    Server Error' (checked on the engine against a stub); the hint said to check the registry
    accepts pushes for this repository, as for a refusal."""
    import rtbuild_docker.images as images

    engine_said = "received unexpected HTTP status: 500 Internal Server Error"
    monkeypatch.setattr(images, "docker_client", lambda host=None: object())
    monkeypatch.setattr(images, "_bounded", lambda *args: (engine_said, None))
    with use_reporter(_Events()), pytest.raises(PushError) as info:
        images.push_image("127.0.0.1:5999/team/app:1")
    assert info.value.message == f"pushing 127.0.0.1:5999/team/app:1 to 127.0.0.1:5999 failed: {engine_said}"
    assert info.value.hint is not None
    assert info.value.hint.startswith("the registry 127.0.0.1:5999 failed each time the engine tried")
    assert "full disk" in info.value.hint
