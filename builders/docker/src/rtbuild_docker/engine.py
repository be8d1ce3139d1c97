"""A minimal Docker Engine API client for the no-op check: image inspect over the socket.

Importing the docker SDK (requests, urllib3, ...) costs more than the whole no-op check,
so the few read-only calls the skip needs go over ``http.client`` on the unix socket (or
plain TCP). TLS and ssh:// hosts fall back to the SDK via :func:`images.docker_client`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlsplit

from rtbuild.errors import EngineUnavailableError

DEFAULT_HOST = "unix:///var/run/docker.sock"


def resolve_host(docker_host: str | None) -> str:
    """The configured host, else ``$DOCKER_HOST``, else the default unix socket."""
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def unreachable(host: str, detail: str) -> EngineUnavailableError:
    source = "DOCKER_HOST" if os.environ.get("DOCKER_HOST") == host else "the configured host"
    return EngineUnavailableError(
        f"cannot reach the Docker engine at {host} ({detail}); DOCKER_HOST={os.environ.get('DOCKER_HOST', '(unset)')}",
        step="connect to engine",
        hint=(
            f"start the daemon (`sudo dockerd &`, `sudo systemctl start docker`, or `make engine`), "
            f"or point DOCKER_HOST / [builders.docker] docker_host at a running engine (now: {source})"
        ),
    )


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class EngineAPI:
    """Read-only Engine API calls the no-op skip needs."""

    def __init__(self, docker_host: str | None = None, timeout: float = 30.0) -> None:
        self.host = resolve_host(docker_host)
        self.timeout = timeout
        parts = urlsplit(self.host)
        self._sdk = parts.scheme not in ("unix", "tcp", "http") or (
            parts.scheme == "tcp" and os.environ.get("DOCKER_TLS_VERIFY") not in (None, "", "0")
        )
        self._parts = parts

    def _connection(self) -> http.client.HTTPConnection:
        if self._parts.scheme == "unix":
            return _UnixConnection(self._parts.path, self.timeout)
        host, port = self._parts.hostname or "localhost", self._parts.port or 2375
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _get(self, path: str) -> tuple[int, Any]:
        conn = self._connection()
        try:
            conn.request("GET", path, headers={"Host": "docker"})
            response = conn.getresponse()
            body = response.read()
        except OSError as exc:
            raise unreachable(self.host, exc.strerror or str(exc)) from exc
        finally:
            conn.close()
        try:
            return response.status, json.loads(body) if body else None
        except ValueError:
            return response.status, None

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        """``GET /images/NAME/json``; ``None`` when the engine has no such image."""
        if self._sdk:
            return self._inspect_sdk(name)
        status, data = self._get(f"/images/{quote(name, safe='/:@')}/json")
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else data
            raise EngineUnavailableError(
                f"the Docker engine at {self.host} answered {status} to an image inspect: {message}",
                step="inspect image",
            )
        return data

    def _inspect_sdk(self, name: str) -> dict[str, Any] | None:
        import docker.errors

        from .images import docker_client

        try:
            attrs: dict[str, Any] = docker_client(self.host).api.inspect_image(name)
        except docker.errors.ImageNotFound:
            return None
        return attrs


__all__ = ["DEFAULT_HOST", "EngineAPI", "resolve_host", "unreachable"]
