"""A minimal Docker Engine API client for the no-op check: image inspect over the socket.

Importing the docker SDK (requests, urllib3, ...) costs more than the whole no-op check,
so the few read-only calls the skip needs go over plain HTTP/1.0 on the unix socket (or
TCP). TLS and ssh:// hosts fall back to the SDK via :func:`images.docker_client`.
"""

from __future__ import annotations

import _socket as c_socket  # the C socket type (see EngineAPI._socket)
import json
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from rtbuild.errors import AgentRuntimeBuildError, ConfigError, EngineUnavailableError

from .dockercontext import ContextTLS, EngineTarget, checked, context_host
from .streamcancel import shut_on_cancel, until_cancelled

DEFAULT_HOST = "unix:///var/run/docker.sock"


def engine_target(docker_host: str | None) -> EngineTarget:
    """The engine, what chose it, and a docker context's name and TLS settings when a
    context chose it: ``[builders.docker] docker_host``, else ``$DOCKER_HOST``, else the
    docker CLI's context, else the default unix socket (the docker CLI's own order)."""
    env_host = os.environ.get("DOCKER_HOST")
    if docker_host:
        return checked(
            EngineTarget(docker_host, f"set by [builders.docker] docker_host; DOCKER_HOST={env_host or '(unset)'}")
        )
    if env_host:
        return checked(EngineTarget(env_host, "set by DOCKER_HOST"))
    return context_host() or EngineTarget(DEFAULT_HOST, "the default socket; DOCKER_HOST is unset")


def resolve_engine(docker_host: str | None) -> tuple[str, str]:
    """The engine's address and what chose it (:func:`engine_target`)."""
    target = engine_target(docker_host)
    return target.host, target.source


def resolve_host(docker_host: str | None) -> str:
    """The engine's address (:func:`resolve_engine`)."""
    return engine_target(docker_host).host


def cli_env(docker_host: str | None) -> dict[str, str]:
    """``DOCKER_HOST`` for the docker CLI: always the engine rtbuild resolved, so a context
    the two could read differently never splits a build from its checks; with a context's
    TLS settings as the CLI's TLS variables (a CLI given ``DOCKER_HOST`` ignores its context)."""
    target = engine_target(docker_host)
    env = {"DOCKER_HOST": target.host}
    if target.context is None:
        return env
    tls = target.tls
    wanted = {  # DOCKER_TLS: TLS without verifying the engine's certificate
        "DOCKER_TLS_VERIFY": "1" if tls and tls.verify else "",
        "DOCKER_TLS": "1" if tls and not tls.verify else "",
        "DOCKER_CERT_PATH": tls.directory if tls else "",
    }
    # An empty value is unset to the CLI: cleared only where the environment sets one.
    env.update({k: v for k, v in wanted.items() if v or os.environ.get(k)})
    return env


def sdk_client(target: EngineTarget) -> Any:
    """A docker SDK client (``docker.DockerClient``) for ``target``, with its context's TLS
    settings, else the environment's TLS variables (for ``DOCKER_HOST`` and for a
    ``[builders.docker] docker_host`` alike, as the docker CLI child); the engine is asked
    for its API version (the SDK's ``auto``), which raises when it does not answer."""
    import docker
    from docker.constants import MINIMUM_DOCKER_API_VERSION as FIRST

    tls = target.tls
    if tls is not None:
        from docker.tls import TLSConfig

        pair = (tls.cert, tls.key) if tls.cert and tls.key else None
        config = TLSConfig(client_cert=pair, ca_cert=tls.ca, verify=tls.verify)
        client = docker.DockerClient(base_url=target.host, tls=config, version=FIRST)
        if not tls.verify:  # the context's SkipTLSVerify: not urllib3's warning on every request
            import warnings

            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    elif target.host.startswith("ssh://"):  # through rtbuild's own socket (sshconn.py)
        from .sshconn import forwarder_for

        client = docker.DockerClient(base_url=f"unix://{forwarder_for(target.host).path}", version=FIRST)
    elif target.context is None:
        # The CLI child gets DOCKER_HOST=target.host and keeps the environment's TLS
        # variables (cli_env), so it speaks TLS to a docker_host too: the SDK must agree.
        client = docker.from_env(version=FIRST, environment={**os.environ, "DOCKER_HOST": target.host})
    else:  # a context without TLS settings: plain, whatever the environment says (as the CLI)
        client = docker.DockerClient(base_url=target.host, version=FIRST)
    api = client.api
    merge = api.merge_environment_settings

    def merged(*args: Any) -> Any:
        # requests lets REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) replace a session's CA in
        # every request (psf/requests#3829): the engine's CA is the context's or DOCKER_CERT_PATH's.
        settings = merge(*args)
        settings["verify"] = api.verify
        return settings

    api.merge_environment_settings = merged
    # What version="auto" does, once requests keeps the engine's CA (hence FIRST above).
    api._version = until_cancelled(target.host, api.version, api_version=False)["ApiVersion"]
    return client


def shown_host(host: str) -> str:
    """``host`` as messages show it: a password in its user part (``tcp://u:PW@h:2375``,
    which the docker CLI drops, or ``ssh://u:PW@h``, which it refuses) as ``***``."""
    try:
        password = urlsplit(host).password
    except ValueError:
        return host
    return host.replace(f":{password}@", ":***@", 1) if password else host


#: How a socket that took the connection fails: no answer in time, a reset (on a send: a broken
#: pipe), not HTTP.
_ANSWERS_BADLY = ("timed out", "reset by peer", "broken pipe", "truncated http", "malformed http", "remote end closed")


def unreachable(host: str, detail: str) -> EngineUnavailableError:
    """The error for an engine that does not answer at ``host``."""
    env_host = os.environ.get("DOCKER_HOST")
    try:
        chosen, source = resolve_engine(None)
    except ConfigError:
        chosen, source = "", ""
    if chosen != host:
        source = f"set by [builders.docker] docker_host; DOCKER_HOST={shown_host(env_host or '(unset)')}"
    hint = (
        "start the daemon (`sudo dockerd &`, `sudo systemctl start docker`, or `make engine` in this repo),"
        " or point DOCKER_HOST (or [builders.docker] docker_host, or `docker context use`) at a running engine"
    )
    if any(word in detail.lower() for word in _ANSWERS_BADLY):  # it took the connection: something runs there
        hint = (
            "something listens there but does not answer as a Docker engine: a hung or overloaded daemon (its log"
            " says why; restart it: `sudo systemctl restart docker`, or `make engine` in this repo), or another"
            " service at that address: point DOCKER_HOST (or [builders.docker] docker_host) at the engine"
        )
    if host.startswith("ssh://"):
        # The docker CLI and rtbuild both run `ssh ... docker system dial-stdio` there.
        from .sshconn import last_error

        if said := last_error(host):
            detail = f"{detail} ({said if said.startswith('ssh:') else 'ssh: ' + said})"
        where = urlsplit(host)
        login = f"{where.username + '@' if where.username else ''}{where.hostname}"
        port = f"-p {where.port} " if where.port else ""
        hint = (
            f"check that `ssh {port}{login} docker system dial-stdio` connects without a prompt (keys,"
            " known_hosts, ~/.ssh/config) and that the engine runs there, or point DOCKER_HOST elsewhere"
        )
    return EngineUnavailableError(
        f"cannot reach the Docker engine at {shown_host(host)} ({source}): {detail}",
        step="connect to engine",
        hint=hint,
    )


def _parse_response(raw: bytes) -> tuple[int, bytes]:
    """Status and body of an HTTP/1.0 response (close-delimited, never chunked)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise OSError("truncated HTTP response from the engine")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(f"malformed HTTP status line from the engine: {status_line!r}")
    return int(status_line[1]), body


def answer_error(host: str, status: int, data: Any, action: str) -> AgentRuntimeBuildError:
    """What an engine's non-2xx answer means, by status (never "unavailable" for a 4xx)."""
    message = data.get("message") if isinstance(data, dict) else data
    detail = f"the Docker engine at {shown_host(host)} answered {status} to {action}: {message}"
    if status == 400:
        return ConfigError(
            f"{detail} (the request is invalid)",
            step=action,
            hint="check the image name or argument the message names",
        )
    if status == 404:
        return AgentRuntimeBuildError(f"{detail} (not found)", step=action, hint="build, pull or tag it first")
    if status == 409:
        return AgentRuntimeBuildError(
            f"{detail} (conflict: in use or being changed by another request)",
            step=action,
            hint="retry when the other operation (a running container, a concurrent build) has finished",
        )
    if status >= 500:
        return EngineUnavailableError(f"{detail} (the engine failed)", step=action, hint="check the daemon's log")
    return AgentRuntimeBuildError(
        detail,
        step=action,
        hint="check that DOCKER_HOST (or docker_host) leads to a Docker engine and not to a proxy or another service",
    )


class EngineAPI:
    """Read-only Engine API calls the no-op skip needs."""

    def __init__(self, docker_host: str | None = None, timeout: float = 30.0) -> None:
        target = engine_target(docker_host)
        self.host = target.host
        self.timeout = timeout
        parts = urlsplit(self.host)
        # A context's TLS comes from the context, never from the environment's variables; there,
        # as to the docker CLI and the SDK, any DOCKER_TLS_VERIFY but an empty one means TLS ("0" too).
        tls = target.tls is not None if target.context else bool(os.environ.get("DOCKER_TLS_VERIFY"))
        self._sdk = parts.scheme not in ("unix", "tcp", "http", "ssh") or (parts.scheme == "tcp" and tls)
        self._parts = parts
        #: Answers fetched by :meth:`prefetch`, each handed out once.
        self._ready: dict[str, dict[str, Any] | None] = {}
        #: Every inspect answer this instance gave (one instance serves one build's check).
        self.answered: dict[str, dict[str, Any] | None] = {}

    def _socket(self) -> c_socket.socket:
        if self._parts.scheme == "ssh":  # a local socket whose connections are ssh sessions
            from .sshconn import forwarder_for

            self._parts = urlsplit(f"unix://{forwarder_for(self.host).path}")
        if self._parts.scheme == "unix":
            # The C socket type: the socket module's import (its enums, selectors) costs
            # about 3.5 ms, a sixth of an exact hit's own work; nothing more is needed here.
            sock = c_socket.socket(c_socket.AF_UNIX, c_socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self._parts.path)
            except BaseException:
                sock.close()
                raise
            return sock
        import socket

        address = (self._parts.hostname or "localhost", self._parts.port or 2375)
        return socket.create_connection(address, timeout=self.timeout)

    def call(self, method: str, path: str) -> tuple[int, Any]:
        """One bodiless request (GET, DELETE): (status, decoded JSON or None). Over the
        socket; for TLS and ssh:// hosts through the docker SDK's client."""
        if self._sdk:
            return self._call_sdk(method, path)
        return self._receive(self._send(path, method))

    def _call_sdk(self, method: str, path: str) -> tuple[int, Any]:
        import requests.exceptions

        from .images import docker_client

        api = docker_client(self.host).api
        try:  # unversioned, as over the socket
            response = until_cancelled(self.host, api.request, method, api.base_url + path, timeout=self.timeout)
        except (requests.exceptions.RequestException, OSError) as exc:
            raise unreachable(self.host, (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]) from exc
        try:
            return response.status_code, response.json() if response.content else None
        except ValueError:
            return response.status_code, None

    def _send(self, path: str, method: str = "GET") -> c_socket.socket:
        # HTTP/1.0 by hand: the engine answers close-delimited, and http.client's import
        # (email, ssl) alone costs more than the whole exchange.
        request = f"{method} {path} HTTP/1.0\r\nHost: docker\r\nUser-Agent: rtbuild\r\n\r\n".encode()
        try:
            sock = self._socket()
        except OSError as exc:
            raise unreachable(self.host, exc.strerror or str(exc)) from exc
        try:
            sock.sendall(request)
        except OSError as exc:
            sock.close()
            raise unreachable(self.host, exc.strerror or str(exc)) from exc
        return sock

    def _receive(self, sock: c_socket.socket) -> tuple[int, Any]:
        chunks: list[bytes] = []
        try:
            try:
                with shut_on_cancel(sock):  # build-many's Ctrl-C: a hung engine's read ends
                    while chunk := sock.recv(65536):
                        chunks.append(chunk)
            finally:
                sock.close()
            status, body = _parse_response(b"".join(chunks))
        except OSError as exc:
            raise unreachable(self.host, exc.strerror or str(exc)) from exc
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None

    def _get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def _image_answer(self, name: str, status: int, data: Any) -> dict[str, Any] | None:
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict):
            raise answer_error(self.host, status, data, f"inspect image {name}")
        return data

    def ping(self) -> None:
        """``GET /_ping``; raises :class:`EngineUnavailableError` when the engine does not answer."""
        if self._sdk:
            from .images import docker_client

            docker_client(self.host)
            return
        self._get("/_ping")

    def image_history(self, name: str) -> list[dict[str, Any]]:
        """``GET /images/NAME/history`` (newest layer first); ``[]`` when absent or unreadable."""
        if self._sdk:
            from .images import docker_client

            history: list[dict[str, Any]] = docker_client(self.host).api.history(name)
            return history
        status, data = self._get(f"/images/{quote(name, safe='/:@')}/history")
        return data if status == 200 and isinstance(data, list) else []

    def inspect_images(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Inspect several images at once, each answer as fresh as :meth:`inspect_image`'s.

        Every request is sent (one connection each) before any answer is read, so the
        engine answers them in parallel: a no-op check that needs its tags and its base
        images waits for one round trip, not one per image (on a loaded engine a round
        trip is milliseconds).
        """
        unique = list(dict.fromkeys(names))
        if self._sdk or len(unique) < 2:
            return {name: self._fetch(name) for name in unique}
        sent: list[tuple[str, c_socket.socket]] = []
        try:
            for name in unique:
                sent.append((name, self._send(f"/images/{quote(name, safe='/:@')}/json")))
            return {name: self._image_answer(name, *self._receive(sock)) for name, sock in sent}
        finally:
            for _name, sock in sent:
                sock.close()

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        """``GET /images/NAME/json``; ``None`` when the engine has no such image."""
        answer = self._ready.pop(name) if name in self._ready else self._fetch(name)
        self.answered[name] = answer
        return answer

    def peek(self, name: str) -> dict[str, Any] | None:
        """A prefetched answer without using it up (``None`` also when not prefetched)."""
        return self._ready.get(name)

    def _fetch(self, name: str) -> dict[str, Any] | None:
        if self._sdk:
            return self._inspect_sdk(name)
        return self._image_answer(name, *self._get(f"/images/{quote(name, safe='/:@')}/json"))

    def prefetch(self, names: Sequence[str]) -> None:
        """Inspect ``names`` together now (:meth:`inspect_images`); the next
        :meth:`inspect_image` of each name answers from that, once. For one no-op check:
        create a new instance per build, never keep answers across builds."""
        self._ready.update(self.inspect_images(names))

    @property
    def uses_sdk(self) -> bool:
        """TLS or ssh:// hosts: the plain-socket calls are not available."""
        return self._sdk

    def _inspect_sdk(self, name: str) -> dict[str, Any] | None:
        import docker.errors

        from .images import docker_client

        try:
            attrs: dict[str, Any] = docker_client(self.host).api.inspect_image(name)
        except docker.errors.ImageNotFound:
            return None
        return attrs


__all__ = [
    "DEFAULT_HOST",
    "ContextTLS",
    "EngineAPI",
    "EngineTarget",
    "answer_error",
    "cli_env",
    "context_host",
    "engine_target",
    "resolve_engine",
    "resolve_host",
    "sdk_client",
    "unreachable",
]
