"""A registry that refuses uploads with 503 (overloaded, in maintenance): the engine retries
each layer with a countdown, a line a second per layer ("Retrying in 5 seconds", 4, 3...).
Those lines filled the PushError's log tail (20 of them and nothing else) and stderr."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import rtbuild
from rtbuild._framework.progress import use_reporter
from rtbuild.errors import PushError
from rtbuild_docker.builder import DockerBuilder

pytestmark = [pytest.mark.engine, pytest.mark.registry]


class _Unavailable(BaseHTTPRequestHandler):
    """``/v2/`` answers; no blob is there; every upload is refused with 503."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        if self.path == "/v2/":
            status, body = 200, b"{}"
        elif self.command == "HEAD":
            status, body = 404, b""
        else:
            status, body = 503, b'{"errors": [{"code": "UNAVAILABLE", "message": "service unavailable"}]}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer


@pytest.fixture
def unavailable_image(docker_engine: str) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    image = f"127.0.0.1:{server.server_address[1]}/rt-test/unavailable:{uuid.uuid4().hex[:10]}"
    subprocess.run([docker_engine, "tag", "busybox:latest", image], check=True, capture_output=True)
    yield image
    subprocess.run([docker_engine, "rmi", image], check=False, capture_output=True)
    server.shutdown()
    server.server_close()


def test_a_retry_countdown_is_one_line_per_retry(unavailable_image: str) -> None:
    lines: list[str] = []

    class Recorder(rtbuild.Reporter):
        def line(self, text: str, *, source: str = "build") -> None:
            lines.append(text)

        def event(self, kind: str, **fields: Any) -> None:
            pass

    # 12 s: the first retry's countdown (5 s) runs out and the second (10 s) starts.
    with use_reporter(Recorder()), pytest.raises(PushError) as info:
        DockerBuilder(push_timeout=12, push_stall_timeout=60).push(unavailable_image)
    assert "did not finish within 12 s" in info.value.message
    retries = [line for line in lines if "Retrying in" in line]
    assert retries, lines
    layers = {line.split(":")[0] for line in retries}
    # Per layer: "Retrying in 5 seconds" then "Retrying in 10 seconds", not every second between.
    assert len(retries) <= 2 * len(layers), retries
    assert len([line for line in info.value.log_tail if "Retrying in" in line]) <= 2 * len(layers)
    assert any("Retrying in" not in line for line in info.value.log_tail), info.value.log_tail
