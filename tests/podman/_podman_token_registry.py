"""A real docker-registry with token auth on 127.0.0.1, and the token server it trusts.

Debian's docker-registry (distribution 2.8) verifies RS256 JWTs whose ``x5c`` certificate is
in its ``rootcertbundle``; the token server here (a thread of the test process) issues them:

- ``GET /token`` with Basic ``setup``/``setup-pass``: for the test's own set-up pushes;
- ``POST /token`` with ``grant_type=refresh_token`` and the registry's identity token (the
  OAuth2 exchange the docker CLI and containers/image make for an ``identitytoken`` login).

Anything else is refused (401). Every request is recorded in ``grants`` (method, grant,
scopes, whether it was granted). Keys and signatures come from the ``openssl`` CLI.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _processes import wait_port

ISSUER = "rtbuild-test-issuer"
SERVICE = "rtbuild-token-test"
SETUP_BASIC = base64.b64encode(b"setup:setup-pass").decode()
REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRegistry:
    host: str
    token_host: str
    identity_token: str
    root: Path
    grants: list[dict[str, Any]] = field(default_factory=list)

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"

    def setup_authfile(self, path: Path) -> Path:
        """An auth file with the set-up user's Basic credentials (for ``podman push``)."""
        path.write_text(json.dumps({"auths": {self.host: {"auth": SETUP_BASIC}}}))
        return path

    def _jwt(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        der = base64.b64decode(
            "".join(line for line in (self.root / "cert.pem").read_text().splitlines() if "-----" not in line)
        )
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "token-user",
            "aud": SERVICE,
            "exp": now + 600,
            "nbf": now - 30,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.root / "key.pem")],
            input=signing.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return f"{signing}.{_b64url(signature)}"

    def handle(
        self, method: str, query: dict[str, list[str]], form: dict[str, list[str]], basic: str | None
    ) -> str | None:
        """The token for one request, or ``None`` (refused)."""
        scopes = query.get("scope", []) + form.get("scope", [])
        grant = (form.get("grant_type") or [""])[0]
        ok = (method == "GET" and basic == SETUP_BASIC) or (
            method == "POST" and grant == "refresh_token" and form.get("refresh_token") == [self.identity_token]
        )
        self.grants.append({"method": method, "grant": grant, "scopes": scopes, "granted": ok})
        return self._jwt(scopes) if ok else None


def _handler(registry: TokenRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":  # containers/image sends chunks
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return body

        def _answer(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            body = self._body() if method == "POST" else b""
            auth = self.headers.get("Authorization") or ""
            basic = auth[6:] if auth.startswith("Basic ") else None
            token = registry.handle(
                method, urllib.parse.parse_qs(url.query), urllib.parse.parse_qs(body.decode()), basic
            )
            reply = json.dumps({"token": token, "access_token": token} if token else {"details": "refused"}).encode()
            self.send_response(200 if token else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    return Handler


def start_token_registry(root: Path) -> Iterator[TokenRegistry]:
    """Generator for a fixture: the registry and token server, stopped afterwards."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={ISSUER}",
            "-keyout",
            str(root / "key.pem"),
            "-out",
            str(root / "cert.pem"),
        ],
        capture_output=True,
        check=True,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    registry = TokenRegistry(
        host="", token_host=f"127.0.0.1:{server.server_address[1]}", identity_token=f"idt-{uuid.uuid4().hex}", root=root
    )
    server.RequestHandlerClass = _handler(registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    registry.host = f"127.0.0.1:{port}"
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  token:\n    realm: http://{registry.token_host}/token\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {root / 'cert.pem'}\n"
    )
    log = root / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=out, stderr=out)
    try:
        wait_port(port, proc, log)
        yield registry
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.shutdown()
        server.server_close()
        thread.join()
