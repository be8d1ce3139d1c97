"""Registry faults against loopback stubs: down, 401, 500, garbage, hanging, dripping; a
Bearer realm on plain http elsewhere; a credential helper that prints its secret."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rtbuild.errors import RegistryAuthError, RegistryError
from rtbuild.oci import Credentials, RegistryClient
from rtbuild.oci._credentials import run_helper

Handler = Callable[[socket.socket], None]


class Stub:
    """A loopback TCP server whose every connection is handed to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                self.handler(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def answer(status: str, headers: str = "", body: bytes = b"") -> Handler:
    def handler(conn: socket.socket) -> None:
        head = f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body)

    return handler


def garbage(conn: socket.socket) -> None:
    conn.sendall(b"\x00\xffthis is not http at all\r\n\r\n")


def hang(conn: socket.socket) -> None:
    threading.Event().wait(60)


def drip(conn: socket.socket) -> None:
    """One byte every 0.5 s, forever: each read is quick, the answer never ends."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
        conn.sendall(bytes([byte]))
        threading.Event().wait(0.5)


@pytest.fixture
def stub() -> Iterator[Callable[[Handler], Stub]]:
    made: list[Stub] = []

    def make(handler: Handler) -> Stub:
        made.append(Stub(handler))
        return made[-1]

    yield make
    for server in made:
        server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client(**kwargs: object) -> RegistryClient:
    return RegistryClient(credentials=lambda registry: None, **kwargs)  # type: ignore[arg-type]


def test_down(stub: Callable[[Handler], Stub]) -> None:
    host = f"127.0.0.1:{closed_port()}"
    with pytest.raises(RegistryError, match="unreachable"):
        client().manifest_exists(f"{host}/x:1")


@pytest.mark.parametrize(
    ("handler", "match"),
    [
        (answer("500 Internal Server Error", body=b"boom"), "HTTP 500"),
        (answer("401 Unauthorized"), "unsupported challenge"),
        (answer("401 Unauthorized", 'WWW-Authenticate: Basic realm="r"\r\n'), "requires authentication"),
        (garbage, "unreachable"),
    ],
    ids=["500", "401-no-challenge", "401-basic-no-creds", "garbage"],
)
def test_bad_answers_are_registry_errors(stub: Callable[[Handler], Stub], handler: Handler, match: str) -> None:
    server = stub(handler)
    with pytest.raises(RegistryError, match=match):
        client().manifest_exists(f"{server.host}/x:1")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("handler", [hang, drip], ids=["hang", "drip"])
def test_slow_registries_hit_the_overall_deadline(stub: Callable[[Handler], Stub], handler: Handler) -> None:
    server = stub(handler)
    # Per-read timeout far above the deadline: only the overall deadline can end a drip.
    with pytest.raises(RegistryError, match=r"did not answer .* within 3s"):
        client(timeout=30.0, deadline=3.0).manifest_exists(f"{server.host}/x:1")


def test_exists_exits_3_when_it_cannot_tell(stub: Callable[[Handler], Stub], tmp_path: Path) -> None:
    from rtbuild.testing import run_cli

    server = stub(answer("500 Internal Server Error"))
    result = run_cli(["exists", f"{server.host}/x:1", "--json"], env={"DOCKER_CONFIG": str(tmp_path)})
    assert result.exit_code == 3, result.stderr
    document = result.json()
    assert document["exists"] is None and document["error"] == "RegistryError"


def test_bearer_realm_on_plain_http_elsewhere_gets_no_credentials(stub: Callable[[Handler], Stub]) -> None:
    server = stub(answer("401 Unauthorized", 'WWW-Authenticate: Bearer realm="http://192.0.2.1/token",service="s"\r\n'))
    creds = Credentials("user", "hunter2-password", None, "test")
    registry = RegistryClient(credentials=lambda registry: creds)
    with pytest.raises(RegistryAuthError, match="refusing to send them") as info:
        registry.manifest_exists(f"{server.host}/x:1")
    assert "hunter2" not in str(info.value.to_dict())


def test_credential_helper_output_is_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "docker-credential-leaky"
    helper.write_text(
        "#!/bin/sh\necho 'Username: bob Secret: s3cr3t-from-helper'\necho 'oops s3cr3t-from-helper' >&2\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    failing = tmp_path / "docker-credential-failing"
    failing.write_text('#!/bin/sh\necho \'{"Secret": "s3cr3t-from-helper"\'\nexit 3\n')
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for name in ("leaky", "failing"):
        with pytest.raises(RegistryAuthError) as info:
            run_helper(name, "127.0.0.1:5000")
        text = info.value.render() + str(info.value.to_dict())
        assert "s3cr3t-from-helper" not in text, text
