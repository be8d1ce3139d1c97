"""The docker CLI's context store, read as the docker CLI (20.10 on) reads it.

``$DOCKER_CONFIG/contexts/meta/<sha256 of name>/meta.json`` holds the endpoint's ``Host``
and ``SkipTLSVerify``; ``contexts/tls/<sha256 of name>/docker/`` its ``ca.pem``,
``cert.pem`` and ``key.pem``. Read on every no-op check: json and os only.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, NamedTuple

from rtbuild.errors import ConfigError

STEP = "resolve docker context"


class ContextTLS(NamedTuple):
    """How a context's endpoint speaks TLS: the files the docker CLI uses, and whether it
    verifies the engine's certificate (``SkipTLSVerify`` false)."""

    directory: str  #: the context's tls directory (``DOCKER_CERT_PATH`` for the CLI)
    ca: str
    cert: str | None  #: the client certificate, with ``key`` (both or neither)
    key: str | None
    verify: bool


class EngineTarget(NamedTuple):
    """The engine rtbuild and its docker CLI talk to, what chose it, and, when a docker
    context chose it, the context's name and TLS settings."""

    host: str
    source: str
    context: str | None = None
    tls: ContextTLS | None = None


def _sha256_hex(text: str) -> str:
    # The builtin hash module: hashlib would load OpenSSL (~10 ms) on a no-op build.
    for name in ("_sha256", "_sha2", "hashlib"):  # _sha2 from Python 3.12
        try:
            module: Any = importlib.import_module(name)
        except ImportError:
            continue
        return str(module.sha256(text.encode()).hexdigest())
    raise ImportError("no sha256 implementation")


def _read_json(path: str, strict: bool = True) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if not strict:
            return None  # as the docker CLI, which warns about a broken config.json and goes on
        raise ConfigError(
            f"cannot read {path}: {exc}",
            step=STEP,
            hint="fix or remove the file, or point DOCKER_CONFIG at another directory",
        ) from exc


def _context_tls(name: str, origin: str, host: str, tls_dir: str, skip_verify: bool) -> ContextTLS | None:
    """The CLI speaks TLS to a context's tcp:// host when the context has a tls directory
    (even an empty one) or ``SkipTLSVerify``; else plain HTTP. It verifies with ``ca.pem``,
    else the system's roots, and presents ``cert.pem`` only with ``key.pem``."""
    if not os.path.isdir(tls_dir) and not skip_verify:
        return None
    if not host.startswith("tcp://"):
        # ssh:// ignores TLS (the CLI too); TLS over a unix socket is not worth a code path.
        if host.startswith("ssh://"):
            return None
        raise ConfigError(
            f"docker context {name!r} ({origin}) has TLS settings for {host}; rtbuild speaks TLS to tcp:// hosts only",
            step=STEP,
            hint="remove the context's TLS settings, or point it at the engine's tcp:// address",
        )
    present = {f: os.path.join(tls_dir, f) for f in ("ca.pem", "cert.pem", "key.pem")}
    present = {f: path for f, path in present.items() if os.path.isfile(path)}
    if "ca.pem" not in present:
        # The CLI would verify against the system's roots, but its DOCKER_CERT_PATH (how the
        # CLI child gets this context's TLS) needs a ca.pem: rather refuse than differ.
        raise ConfigError(
            f"docker context {name!r} ({origin}) connects with TLS but has no ca.pem in {tls_dir}",
            step=STEP,
            hint=(
                "give the context the CA of the engine's certificate:"
                f' `docker context update {name} --docker "host={host},ca=CA.pem,cert=CERT.pem,key=KEY.pem"`'
            ),
        )
    pair = "cert.pem" in present and "key.pem" in present
    return ContextTLS(
        directory=tls_dir,
        ca=present["ca.pem"],
        cert=present["cert.pem"] if pair else None,
        key=present["key.pem"] if pair else None,
        verify=not skip_verify,
    )


def context_host() -> EngineTarget | None:
    """The engine of the docker CLI's chosen context (``DOCKER_CONTEXT``, else
    ``currentContext`` in ``$DOCKER_CONFIG/config.json``), what chose it and its TLS
    settings; ``None`` for the ``default`` context. Read from the CLI's context store, as
    the CLI does, so rtbuild's own engine calls and the CLI's builds go to one engine."""
    config_dir = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    name = os.environ.get("DOCKER_CONTEXT")
    origin = "DOCKER_CONTEXT"
    if name is None:
        config = _read_json(os.path.join(config_dir, "config.json"), strict=False)
        name = config.get("currentContext") if isinstance(config, dict) else None
        origin = f"currentContext in {os.path.join(config_dir, 'config.json')}, set by `docker context use`"
    if not name or name == "default":
        return None
    digest = _sha256_hex(name)
    meta_path = os.path.join(config_dir, "contexts", "meta", digest, "meta.json")
    meta = _read_json(meta_path)
    if meta is None:
        raise ConfigError(
            f"docker context {name!r} ({origin}) does not exist: no {meta_path}",
            step=STEP,
            hint="`docker context ls` lists the contexts; choose one with `docker context use NAME`",
        )
    endpoint = ((meta.get("Endpoints") or {}) if isinstance(meta, dict) else {}).get("docker") or {}
    host = endpoint.get("Host") if isinstance(endpoint, dict) else None
    if not host:
        raise ConfigError(
            f"docker context {name!r} ({origin}) has no docker endpoint",
            step=STEP,
            hint=f"recreate it (`docker context create {name} --docker host=...`), or choose another context",
        )
    tls_dir = os.path.join(config_dir, "contexts", "tls", digest, "docker")
    tls = _context_tls(name, origin, str(host), tls_dir, bool(endpoint.get("SkipTLSVerify")))
    return EngineTarget(str(host), f"docker context {name!r}, from {origin}", name, tls)


#: Engine address schemes the docker client and SDK take (npipe:// is Windows', fd:// systemd's).
_SCHEMES = ("unix", "tcp", "ssh", "http", "https", "npipe", "fd")


def checked(target: EngineTarget) -> EngineTarget:
    """``target`` when its address has a scheme an engine client takes. A typo there
    (``DOCKER_HOST=tcp:/h:2375``, ``bogus://h``, a bare socket path) said 'cannot reach the
    Docker engine' with the hint to start a daemon, and ``exists`` exit 3 (could not tell)."""
    scheme, separator, rest = target.host.partition("://")
    if separator and scheme in _SCHEMES and rest:
        return target
    from rtbuild.enginekit import mask_url_passwords

    raise ConfigError(
        f"the engine address {mask_url_passwords(target.host)!r} ({target.source}) is not one a docker client takes",
        step="connect to engine",
        hint="write unix:///PATH/docker.sock, tcp://HOST:PORT or ssh://[USER@]HOST (the scheme and :// are needed)",
    )


__all__ = ["ContextTLS", "EngineTarget", "checked", "context_host"]
