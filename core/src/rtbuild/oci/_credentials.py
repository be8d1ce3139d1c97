"""Registry credentials from the docker config, the way the docker CLI finds them.

``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``) is read on every
lookup, so a ``docker login`` between two calls is seen. Order, as in the docker CLI:
``credHelpers[registry]``, else ``credsStore``, run as ``docker-credential-NAME get``;
then the base64 ``auth`` (or ``username``/``password``/``identitytoken``) in ``auths``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtbuild.errors import ConfigError, RegistryAuthError
from rtbuild.oci._references import DEFAULT_REGISTRY, DOCKER_HUB_AUTH_KEY

#: Names under which Docker Hub credentials may be stored.
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
#: What ``docker-credential-*`` helpers print when they hold nothing for a server.
_NOT_FOUND = "credentials not found"
HELPER_TIMEOUT_S = 30


@dataclass(frozen=True)
class Credentials:
    """A username/password pair or an identity (refresh) token, and where it came from."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    source: str = ""

    def auth_config(self, registry: str | None = None) -> dict[str, str]:
        """The docker SDK's ``auth_config`` (the engine's ``X-Registry-Auth`` fields)."""
        config: dict[str, str] = {}
        if self.identity_token:
            config["identitytoken"] = self.identity_token
        if self.username:
            config["username"] = self.username
        if self.password:
            config["password"] = self.password
        if registry:
            config["serveraddress"] = server_address(registry)
        return config

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(username={self.username!r}, source={self.source!r})"


def docker_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG`` or ``~/.docker``."""
    env = os.environ if env is None else env
    configured = env.get("DOCKER_CONFIG")
    return Path(configured).expanduser() if configured else Path.home() / ".docker"


def load_docker_config(config_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parsed ``config.json`` (empty when there is none)."""
    path = Path(config_dir) / "config.json" if config_dir is not None else docker_config_dir() / "config.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"cannot read docker config {path}: {exc.strerror}",
            step="read registry credentials",
            hint="make it readable by this user, or point DOCKER_CONFIG at another directory",
        ) from exc
    except UnicodeDecodeError:
        raise ConfigError(
            f"docker config {path} is not UTF-8 text", step="read registry credentials", hint="save it as UTF-8"
        ) from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"docker config {path} is not valid JSON: {exc}",
            step="read registry credentials",
            hint="fix the file, or point DOCKER_CONFIG at another directory",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"docker config {path} must hold a JSON object",
            step="read registry credentials",
            hint='fix the file (e.g. {"auths": {}}), or point DOCKER_CONFIG at another directory',
        )
    return data


def hostname_of(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000`` (docker's ``ConvertToHostname``)."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key.split("/", 1)[0]


def _same_registry(key: str, registry: str) -> bool:
    host = hostname_of(key)
    if registry == DEFAULT_REGISTRY:
        return host in _HUB_ALIASES
    return host == registry


def server_address(registry: str) -> str:
    """The server name ``docker login`` stores for ``registry``."""
    return DOCKER_HUB_AUTH_KEY if registry == DEFAULT_REGISTRY else registry


def _config_error(source: str, what: str) -> ConfigError:
    return ConfigError(
        f"{what} in {source}",
        step="read registry credentials",
        hint="fix the file by hand, or move it away and run `docker login` again",
    )


def _from_auths(entry: Mapping[str, Any], source: str) -> Credentials | None:
    for key in ("auth", "username", "password", "identitytoken"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise _config_error(source, f"`{key}` of a registry in `auths` is not a string")
    username, password = entry.get("username"), entry.get("password")
    encoded = entry.get("auth")
    if encoded:
        try:
            decoded = base64.b64decode(encoded, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(
                f"the `auth` value for a registry in {source} is not base64 of user:password",
                step="read registry credentials",
                hint="run `docker login` again to rewrite it",
            ) from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(
                f"the `auth` value in {source} decodes to no user:password pair",
                step="read registry credentials",
                hint="run `docker login` again to rewrite it",
            )
    token = entry.get("identitytoken") or None
    if not (username or password or token):
        return None
    return Credentials(username or None, password or None, token, source)


def _stderr_tail(stderr: str, stdout: str) -> list[str]:
    """The helper's last stderr lines, with every stdout word of 4+ characters masked."""
    words = sorted({w for w in stdout.replace('"', " ").split() if len(w) >= 4}, key=len, reverse=True)
    lines = stderr.strip().splitlines()[-5:]
    for word in words:
        lines = [line.replace(word, "***") for line in lines]
    return lines


def run_helper(helper: str, registry: str) -> Credentials | None:
    """Ask ``docker-credential-HELPER get``; ``None`` when it holds nothing for ``registry``."""
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [program, "get"],
            input=server_address(registry),
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise RegistryAuthError(
            f"the docker config names credential helper {helper!r} but {program} is not installed",
            step="read registry credentials",
            hint=f"install {program}, or remove it from credsStore/credHelpers in config.json",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryAuthError(
            f"credential helper {program} did not answer within {HELPER_TIMEOUT_S}s",
            step="read registry credentials",
            hint="unlock the keychain the helper uses, or check it runs by hand",
        ) from exc
    except UnicodeDecodeError:
        raise RegistryAuthError(
            f"credential helper {program} printed bytes that are not UTF-8 (not shown: they may hold the secret)",
            step="read registry credentials",
            hint=f"run `echo {server_address(registry)} | {program} get` yourself to see what it prints",
        ) from None
    # A helper's stdout may hold the secret (even on failure, even when it is not JSON):
    # it is never shown. Its stderr is shown, with anything that looks like a secret
    # from stdout masked.
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        if _NOT_FOUND in output.lower():
            return None
        raise RegistryAuthError(
            f"credential helper {program} failed for {registry} (exit {proc.returncode})",
            step="read registry credentials",
            log_tail=_stderr_tail(proc.stderr, proc.stdout),
            hint=f"run `echo {server_address(registry)} | {program} get` to see the problem",
        )
    try:
        answer = json.loads(proc.stdout)
        if not isinstance(answer, dict):
            raise ValueError("not an object")
    except ValueError:
        raise RegistryAuthError(
            f"credential helper {program} printed {len(proc.stdout)} bytes that are not a JSON object"
            " (not shown: they may hold the secret)",
            step="read registry credentials",
            log_tail=_stderr_tail(proc.stderr, proc.stdout),
            hint=f"run `echo {server_address(registry)} | {program} get` yourself to see what it prints",
        ) from None
    username, secret = answer.get("Username") or None, answer.get("Secret") or None
    if not all(value is None or isinstance(value, str) for value in (username, secret)):
        raise RegistryAuthError(
            f"credential helper {program} answered with a Username or Secret that is not a string",
            step="read registry credentials",
            hint=f"run `echo {server_address(registry)} | {program} get` yourself to see what it prints",
        )
    if not (username or secret):
        return None
    if username == "<token>":  # docker's marker for an identity token
        return Credentials(identity_token=secret, source=program)
    return Credentials(username, secret, None, program)


def get_credentials(registry: str, *, config_dir: str | os.PathLike[str] | None = None) -> Credentials | None:
    """Credentials for ``registry`` (a host[:port], ``docker.io`` for Docker Hub), or ``None``."""
    directory = Path(config_dir) if config_dir is not None else docker_config_dir()
    config = load_docker_config(directory)
    source = str(directory / "config.json")
    helpers = config.get("credHelpers") or {}
    if not isinstance(helpers, dict) or not all(isinstance(name, str) for name in helpers.values()):
        raise _config_error(source, "`credHelpers` is not an object of registry: helper name")
    if not isinstance(config.get("credsStore") or "", str):
        raise _config_error(source, "`credsStore` is not a helper name")
    helper = next((name for key, name in helpers.items() if _same_registry(key, registry)), None)
    helper = helper or config.get("credsStore") or None
    if helper:
        found = run_helper(str(helper), registry)
        if found is not None:
            return found
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        raise _config_error(source, "`auths` is not an object of registry: credentials")
    # An exact key wins over another spelling of the same host.
    exact = auths.get(server_address(registry)) or auths.get(registry)
    if isinstance(exact, dict) and (found := _from_auths(exact, source)):
        return found
    for key, entry in auths.items():
        if isinstance(entry, dict) and _same_registry(key, registry) and (found := _from_auths(entry, source)):
            return found
    return None


def masked_answer(lines: list[str], creds: Credentials | None) -> list[str]:
    """A registry's answer, shown in an error, may echo what was sent: mask the secrets."""
    if creds is None:
        return lines
    secrets = [s for s in (creds.password, creds.identity_token) if s]
    if creds.password:  # as sent in a Basic header
        secrets.append(base64.b64encode(f"{creds.username or ''}:{creds.password}".encode()).decode("ascii"))
    for secret in sorted(secrets, key=len, reverse=True):
        lines = [line.replace(secret, "***") for line in lines]
    return lines


__all__ = [
    "Credentials",
    "docker_config_dir",
    "get_credentials",
    "hostname_of",
    "load_docker_config",
    "masked_answer",
    "run_helper",
    "server_address",
]
