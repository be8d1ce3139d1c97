"""Registry credentials for Podman: its ``auth.json`` first, then the docker config.

Podman's ``podman login`` writes ``auth.json`` (``$REGISTRY_AUTH_FILE``, else
``$XDG_RUNTIME_DIR/containers/auth.json``, root's ``/run/containers/0/auth.json``, and the
persistent ``~/.config/containers/auth.json``), in the docker config's ``auths`` format,
keyed by ``registry`` or ``registry/namespace``. When none of them holds the registry,
the lookup is the Docker backend's (:func:`rtbuild.oci.get_credentials`: credential
helpers, then ``auths`` in ``$DOCKER_CONFIG/config.json``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from rtbuild import ConfigError
from rtbuild.oci import Credentials, get_credentials


def auth_files() -> list[Path]:
    """Podman's auth files, in the order podman reads them."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    paths: list[Path] = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        paths.append(Path(runtime) / "containers" / "auth.json")
    if os.geteuid() == 0:
        paths.append(Path("/run/containers/0/auth.json"))
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    paths.append(Path(config_home) / "containers" / "auth.json")
    return list(dict.fromkeys(paths))


def _decode(entry: object, source: str) -> Credentials | None:
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    try:
        user, sep, password = base64.b64decode(str(entry["auth"])).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"the `auth` value for a registry in {source} is not base64 of user:password",
            step="read registry credentials",
            hint="run `podman login` again to rewrite it",
        ) from exc
    return Credentials(user or None, password or None, None, source) if sep else None


def from_auth_file(path: Path, registry: str) -> Credentials | None:
    """The credentials ``path`` holds for ``registry`` (``registry/ns`` keys count too)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read podman auth file {path}: {exc}",
            step="read registry credentials",
            hint="fix or remove the file, or run `podman login` again",
        ) from exc
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    for key in sorted(auths, key=len, reverse=True):
        host = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
        if host == registry:
            found = _decode(auths[key], str(path))
            if found is not None:
                return found
    return None


def find_credentials(registry: str) -> Credentials | None:
    """Podman's auth files, then the docker config (see the module docstring)."""
    for path in auth_files():
        found = from_auth_file(path, registry)
        if found is not None:
            return found
    return get_credentials(registry)


__all__ = ["auth_files", "find_credentials", "from_auth_file"]
