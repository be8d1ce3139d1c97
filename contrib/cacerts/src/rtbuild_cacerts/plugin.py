"""The ``cacerts`` runtime plugin: the host's CA bundle and proxy settings in the image.

Behind a TLS-intercepting proxy, ``pip install`` in a ``RUN`` step fails unless the
proxy's CA is trusted. This plugin COPYs the host's bundle into the image first
(``order = -100``) and sets the variables pip, requests, OpenSSL, curl and Node.js read,
so every later ``RUN`` step -- and every program in the finished image -- trusts it.

Settings (``[plugins.cacerts]``; the environment wins over the file):

* ``bundle`` / ``RTBUILD_CACERTS_BUNDLE``: the host CA bundle
  (default ``/etc/ssl/certs/ca-certificates.crt``).
* ``image_path``: where the bundle goes in the image
  (default ``/usr/local/share/rtbuild/ca-certificates.crt``).
* ``proxy`` (default true): copy the host's ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``
  (either case), when set, into the image's environment, in both cases; a proxy URL
  holding credentials is never copied (a warning says so).

Everything is in the dependency ("lock") group: a new host bundle or proxy changes the
lock hash, so dependency layers are rebuilt with it.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import rtbuild
from rtbuild import RuntimeRequirements, setting
from rtbuild.errors import ConfigError

if TYPE_CHECKING:
    from rtbuild import Config

NAME = "cacerts"
ENV_BUNDLE = "RTBUILD_CACERTS_BUNDLE"
DEFAULT_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DEFAULT_IMAGE_PATH = "/usr/local/share/rtbuild/ca-certificates.crt"
#: Variables pointing at the bundle: pip, requests, OpenSSL (Python ssl), curl, Node.js.
CA_ENV_VARS = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def _error(message: str, hint: str) -> ConfigError:
    return ConfigError(message, step="cacerts plugin: read [plugins.cacerts]", hint=hint)


def _normalised_absolute(value: str) -> str | None:
    if value.startswith("/") and posixpath.normpath(value) == value:
        return None
    return f"is not a normalised absolute path (use a file path such as {DEFAULT_IMAGE_PATH})"


@dataclass(frozen=True)
class _Table:
    """``[plugins.cacerts]`` as written; :class:`CACertsSettings` is what the plugin uses."""

    bundle: str = setting(DEFAULT_BUNDLE, env=ENV_BUNDLE, path=True, help="the host's PEM CA bundle")
    image_path: str = setting(DEFAULT_IMAGE_PATH, check=_normalised_absolute)
    proxy: bool = setting(True, help="copy the host's proxy variables into the image")


@dataclass(frozen=True)
class CACertsSettings:
    bundle: Path
    image_path: str = DEFAULT_IMAGE_PATH
    proxy: bool = True

    @classmethod
    def from_config(cls, config: Config, env: Mapping[str, str] | None = None) -> CACertsSettings:
        table = rtbuild.plugin_settings(_Table, config, NAME, env=env, docs="docs/plugins/cacerts.md")
        return cls(bundle=Path(table.bundle).expanduser(), image_path=table.image_path, proxy=table.proxy)


_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY|^Private-Lines:", re.MULTILINE)

#: Far above any real bundle (Debian's holds ~140 certificates in ~220 KB).
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


def read_bundle(path: Path) -> bytes:
    """The bundle's bytes; a missing, unreadable, not regular, oversized or
    certificate-less file, or one holding a private key, is a ConfigError."""
    hint = f"point [plugins.cacerts] bundle / {ENV_BUNDLE} at a PEM CA bundle"
    try:
        # O_NONBLOCK: a FIFO with no writer must not hang the open; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _error(f"the host CA bundle {path} is not a regular file", hint)
            os.set_blocking(fd, True)
            data = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise _error(
            f"cannot read the host CA bundle {path}: {exc.strerror}",
            f"install ca-certificates on the host, or set [plugins.cacerts] bundle / {ENV_BUNDLE} to a PEM bundle",
        ) from exc
    if len(data) > MAX_BUNDLE_BYTES:
        raise _error(f"the host CA bundle {path} is larger than {MAX_BUNDLE_BYTES >> 20} MiB", hint)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise _error(f"{path} holds no PEM certificate", hint)
    # BEGIN PRIVATE KEY, RSA/EC/DSA/OPENSSH/ENCRYPTED PRIVATE KEY, PGP PRIVATE KEY BLOCK,
    # and a PuTTY key file (not PEM; 'Private-Lines:' holds the key).
    # The substring checks first: both scan a 220 KB bundle in ~0.1 ms where the
    # regex (no literal prefix to skip by) takes ~2.5 ms on every runtime-image call.
    if (b"PRIVATE KEY" in data or b"Private-Lines:" in data) and _PRIVATE_KEY.search(data):
        raise _error(
            f"{path} holds a private key: refusing to copy it into the image",
            "point the bundle at a file of certificates only (the key belongs to the proxy, not the image)",
        )
    return data


def proxy_env(env: Mapping[str, str], withheld: list[str] | None = None) -> dict[str, str]:
    """The host's proxy settings (upper case wins over lower), set in both cases. A proxy
    URL with credentials (``http://user:PW@proxy:3128``) is left out, its name appended to
    ``withheld``: the image's environment is readable by anyone who has the image."""
    out: dict[str, str] = {}
    for name in PROXY_VARS:
        value = env.get(name) or env.get(name.lower())
        if value and _has_credentials(value):
            if withheld is not None:
                withheld.append(name)
        elif value:
            out[name] = out[name.lower()] = value
    return out


def _has_credentials(value: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value if "://" in value else "http://" + value)
        return bool(parts.username or parts.password)
    except ValueError:  # not a URL the parser takes: keep it out rather than risk a password
        return "@" in value


class CACertsPlugin:
    """Runtime plugin ``cacerts``: see the module docstring."""

    name = NAME
    order = -100  # before every other plugin, so their RUN steps trust the CA

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env

    def requirements(self, config: Config) -> RuntimeRequirements:
        env = os.environ if self._env is None else self._env
        settings = CACertsSettings.from_config(config, env)
        bundle = read_bundle(settings.bundle)
        image_env = dict.fromkeys(CA_ENV_VARS, settings.image_path)
        if settings.proxy:
            withheld: list[str] = []
            image_env.update(proxy_env(env, withheld))
            for name in withheld:
                rtbuild.get_reporter().event(
                    "cacerts_proxy_withheld",
                    variable=name,
                    message=f"cacerts: {name} holds credentials, so it is not copied into the image's environment"
                    f" (anyone with the image could read them); for the build pass --build-arg {name}=... (the"
                    " engine keeps its proxy build args out of the image), and set it where the image runs",
                )
        return RuntimeRequirements(
            dependency_files={settings.image_path: bundle},
            env=image_env,
            labels={"org.rtbuild.cacerts.path": settings.image_path},
        )


@rtbuild.hookimpl
def runtime_plugins(config: Config) -> list[CACertsPlugin]:
    return [CACertsPlugin()]


__all__ = [
    "CA_ENV_VARS",
    "DEFAULT_BUNDLE",
    "DEFAULT_IMAGE_PATH",
    "CACertsPlugin",
    "CACertsSettings",
    "proxy_env",
    "read_bundle",
    "runtime_plugins",
]
