"""Registry credentials for Podman: its ``auth.json`` first, then the docker config.

Podman's ``podman login`` writes ``auth.json`` (``$REGISTRY_AUTH_FILE``, else
``$XDG_RUNTIME_DIR/containers/auth.json``, root's ``/run/containers/0/auth.json``, and the
persistent ``~/.config/containers/auth.json``), in the docker config's ``auths`` format,
keyed by ``registry`` or ``registry/namespace``. When none of them holds the registry,
the lookup is the Docker backend's (:func:`rtbuild.oci.get_credentials`: credential
helpers, then ``auths`` in ``$DOCKER_CONFIG/config.json``).

They reach podman in an ``--authfile`` held in memory (:func:`in_memory`). For ``podman
build`` that file is Podman's own primary auth file with the credentials rtbuild finds for
the build's base registries added (:func:`build_auth_document`): an ``--authfile`` takes the
primary file's place in containers/image's lookup, which reads the later ones
(``~/.config/containers/auth.json``, the docker config's ``auths`` and ``credHelpers``)
either way, but never runs a ``credsStore`` helper nor reads ``username``/``password``
fields nor an ``identitytoken`` without an ``auth`` pair beside it -- the cases where only
rtbuild found credentials.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from rtbuild import AgentRuntimeBuildError, ConfigError
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


def _host(key: str) -> str:
    """An ``auths`` key's registry: ``https://host:5000/ns`` -> ``host:5000``."""
    return key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]


def _decode(entry: object, source: str) -> Credentials | None:
    """An ``auths`` entry as containers/image reads it: ``auth`` must decode to
    ``user:password``; an ``identitytoken`` beside it counts (a token alone does not)."""
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
    token = entry.get("identitytoken")
    token = token if isinstance(token, str) and token else None
    return Credentials(user or None, password or None, token, source) if sep else None


def _read_auth_file(path: Path) -> Any:
    """``path``'s JSON document; ``None`` when there is no such file."""
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read podman auth file {path}: {exc}",
            step="read registry credentials",
            hint="fix or remove the file, or run `podman login` again",
        ) from exc


def from_auth_file(path: Path, registry: str) -> Credentials | None:
    """The credentials ``path`` holds for ``registry`` (``registry/ns`` keys count too)."""
    data = _read_auth_file(path)
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    for key in sorted(auths, key=len, reverse=True):
        if _host(key) == registry:
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


def usable(creds: Credentials | None) -> bool:
    """Whether ``creds`` hold a secret podman can use: a password or an identity token."""
    return creds is not None and bool(creds.password or creds.identity_token)


def auth_entry(creds: Credentials) -> dict[str, str]:
    """An ``auths`` value podman reads: base64 of ``user:password``, and the identity
    (OAuth2 refresh) token if there is one. containers/image takes the token only beside an
    ``auth`` that decodes to a ``user:password`` pair (an entry holding the token alone is
    no credential to it), so that pair is written even when both halves are empty."""
    entry = {"auth": base64.b64encode(f"{creds.username or ''}:{creds.password or ''}".encode()).decode()}
    if creds.identity_token:
        entry["identitytoken"] = creds.identity_token
    return entry


def replaced_auth_file() -> Path:
    """The file an ``--authfile`` stands in for: containers/image's primary auth file."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "containers" / "auth.json"
    return Path(f"/run/containers/{os.geteuid()}/auth.json")


def _primary_document() -> dict[str, Any]:
    path = replaced_auth_file()
    data = _read_auth_file(path)
    if data is None:
        return {"auths": {}}
    if not isinstance(data, dict) or not isinstance(data.setdefault("auths", {}), dict):
        raise ConfigError(
            f"podman auth file {path} holds no `auths` object",
            step="read registry credentials",
            hint='fix the file (e.g. {"auths": {}}), or point REGISTRY_AUTH_FILE at another one',
        )
    return data


def build_auth_document(registries: Iterable[str], warn: Callable[[str], None]) -> bytes | None:
    """The ``--authfile`` for a ``podman build`` pulling from ``registries``, ``None`` when
    rtbuild knows nothing Podman's own lookup does not (then no ``--authfile`` is given).

    Only credentials from the docker config are added (Podman reads its own auth files
    itself), and never over an entry or helper Podman's primary file has for the registry.
    A lookup that fails (a missing or failing helper, a malformed file) is ``warn``-ed and
    the registry left to Podman: its bases may be local, and the build worked without.
    """
    own = {str(path) for path in auth_files()}
    added: dict[str, dict[str, str]] = {}
    for registry in dict.fromkeys(registries):
        try:
            creds = find_credentials(registry)
        except AgentRuntimeBuildError as exc:
            warn(f"no credentials for {registry} from rtbuild ({exc.message}); podman looks them up itself")
            continue
        if creds is not None and usable(creds) and creds.source not in own:
            added[registry] = auth_entry(creds)
    if not added:
        return None
    try:
        document = _primary_document()
    except ConfigError as exc:
        warn(f"{exc.message}; podman looks up the base images' credentials itself")
        return None
    auths, helpers = document["auths"], document.get("credHelpers") or {}
    # An empty entry (docker writes one beside a helper) is no credential to Podman either.
    present = {_host(str(key)) for key, entry in auths.items() if isinstance(entry, dict) and entry.get("auth")}
    present |= set(helpers if isinstance(helpers, dict) else ())
    auths.update({registry: entry for registry, entry in added.items() if registry not in present})
    return json.dumps(document).encode()


@contextlib.contextmanager
def in_memory(data: bytes) -> Iterator[tuple[str, tuple[int, ...]]]:
    """``(path, fds to pass)``: ``data`` in a file podman can read and nothing else sees.

    A memfd (``/proc/self/fd/N`` in podman, which inherits it): no name on disk, gone when
    the last of rtbuild and podman exits, kill -9 included. Without memfd_create, a 0600
    file in a 0700 directory of its own, removed afterwards (kill -9 of rtbuild leaves that
    one behind).
    """
    try:
        fd = os.memfd_create("rtbuild-podman-auth", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        fd = -1
    if fd >= 0:
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}", (fd,)
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="rtbuild-podman-auth-")  # mode 0700
    try:
        path = os.path.join(directory, "auth.json")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(data)
        yield path, ()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


__all__ = [
    "auth_entry",
    "auth_files",
    "build_auth_document",
    "find_credentials",
    "from_auth_file",
    "in_memory",
    "replaced_auth_file",
    "usable",
]
