"""The ``vscode`` runtime plugin: an openvscode-server release archive, verified, installed.

Settings (``[plugins.vscode]``; the environment wins over the file):

* ``url`` / ``RTBUILD_VSCODE_URL``: the release archive (.tar.gz whose one top directory
  holds ``bin/openvscode-server``); http, https or file URL. Required.
* ``sha256`` / ``RTBUILD_VSCODE_SHA256``: its digest. Required; checked on the host
  before the archive enters the build context.
* ``install_dir`` (default ``/opt/openvscode-server``): where the archive's top directory goes.
* ``port`` (default 3000): the port the launcher script serves on (``EXPOSE``d).

The install is in the dependency ("lock") layer group; the launcher script, port and
labels are in the source group, so changing the port does not re-extract the archive.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import rtbuild
from rtbuild import RuntimeRequirements, setting
from rtbuild.errors import ConfigError

from .download import fetch_verified, normalize_sha256, shown

if TYPE_CHECKING:
    from rtbuild import Config

NAME = "vscode"
ENV_URL = "RTBUILD_VSCODE_URL"
ENV_SHA256 = "RTBUILD_VSCODE_SHA256"
DEFAULT_INSTALL_DIR = "/opt/openvscode-server"
DEFAULT_PORT = 3000
#: Where the verified archive is COPYed in the image (removed again after extraction).
ARCHIVE_PATH = "/tmp/rtbuild-vscode/openvscode-server.tar.gz"
LAUNCHER_PATH = "/usr/local/bin/openvscode-server-start"

# install_dir is pasted into shell commands: allow plain absolute paths only.
_SAFE_DIR = re.compile(r"^/[A-Za-z0-9._+/-]*[A-Za-z0-9._+-]$")
_EXAMPLE = (
    '[plugins.vscode]\nurl = "https://github.com/gitpod-io/openvscode-server/releases/download/'
    'openvscode-server-vX.Y.Z/openvscode-server-vX.Y.Z-linux-x64.tar.gz"\nsha256 = "<64 hex digits>"'
)


def _config_error(message: str, hint: str) -> ConfigError:
    return ConfigError(message, step="vscode plugin: read [plugins.vscode]", hint=hint)


def _plain_dir(value: str) -> str | None:
    value = value.rstrip("/") or "/"
    if not _SAFE_DIR.match(value) or {".", ".."} & set(value.split("/")):
        return "is not a plain absolute path (letters, digits and . _ + - /, e.g. /opt/openvscode-server)"
    return None


def _tcp_port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "is not a TCP port (use an integer 1-65535)"


@dataclass(frozen=True)
class VSCodeSettings:
    """``[plugins.vscode]``; the environment wins over the file. Reading it never downloads."""

    url: str = setting("", env=ENV_URL, help="the openvscode-server release archive (http, https or file URL)")
    sha256: str = setting("", env=ENV_SHA256, help="the archive's sha256, checked before it enters a context")
    install_dir: str = setting(DEFAULT_INSTALL_DIR, check=_plain_dir)
    port: int = setting(DEFAULT_PORT, check=_tcp_port)

    @classmethod
    def from_config(cls, config: Config, env: Mapping[str, str] | None = None) -> VSCodeSettings:
        settings = rtbuild.plugin_settings(cls, config, NAME, env=env, docs="docs/plugins/vscode.md")
        url = settings.url.strip()
        if not url:
            raise _config_error(
                "the vscode plugin needs the URL of an openvscode-server release archive",
                f"set {ENV_URL} or add to rtbuild.toml:\n{_EXAMPLE}",
            )
        if not settings.sha256.strip():
            raise _config_error(
                f"no sha256 configured for {shown(url)}",
                f"set [plugins.vscode] sha256 or {ENV_SHA256} to the release's published digest"
                f" (`curl -sL {shown(url)} | sha256sum` shows what it serves now; verify it against the release page)",
            )
        sha256 = normalize_sha256(settings.sha256.strip(), source="[plugins.vscode] sha256")
        install_dir = settings.install_dir.rstrip("/") or "/"
        return cls(url=url, sha256=sha256, install_dir=install_dir, port=settings.port)


def install_dockerfile(install_dir: str) -> str:
    """The RUN step that unpacks the verified archive (needs sh, tar with gzip, mktemp)."""
    parent = os.path.dirname(install_dir) or "/"
    archive_dir = os.path.dirname(ARCHIVE_PATH)
    return (
        'RUN set -e; tmp="$(mktemp -d)"; \\\n'
        f'    tar -xzf {ARCHIVE_PATH} -C "$tmp"; \\\n'
        '    set -- "$tmp"/*; \\\n'
        '    if [ "$#" -ne 1 ] || [ ! -x "$1/bin/openvscode-server" ]; then \\\n'
        '      echo "rtbuild-vscode: the archive must hold one top directory containing'
        ' an executable bin/openvscode-server; it holds:" >&2; ls -la "$tmp" >&2; exit 1; \\\n'
        "    fi; \\\n"
        f'    rm -rf {install_dir}; mkdir -p {parent}; mv "$1" {install_dir}; \\\n'
        f'    rm -rf "$tmp" {archive_dir}\n'
    )


def launcher_script(install_dir: str, port: int) -> str:
    return (
        "#!/bin/sh\n"
        "# Installed by rtbuild-vscode: start openvscode-server on the configured port.\n"
        "# Extra arguments (e.g. --connection-token TOKEN) are passed through.\n"
        f'exec {install_dir}/bin/openvscode-server --host "${{OPENVSCODE_HOST:-0.0.0.0}}"'
        f' --port "${{OPENVSCODE_PORT:-{port}}}" "$@"\n'
    )


class VSCodePlugin:
    """Selected with ``rtbuild runtime --plugin vscode``."""

    name = NAME
    order = 0

    def requirements(self, config: Config) -> RuntimeRequirements:
        settings = VSCodeSettings.from_config(config)
        archive = fetch_verified(settings.url, settings.sha256)
        return RuntimeRequirements(
            dependency_files={ARCHIVE_PATH: archive},
            dockerfile=install_dockerfile(settings.install_dir),
            env={"OPENVSCODE_SERVER_ROOT": settings.install_dir},
            files={LAUNCHER_PATH: launcher_script(settings.install_dir, settings.port)},
            # The core COPYs "#!" files executable, so the launcher needs no chmod layer.
            source_dockerfile=f"EXPOSE {settings.port}\n",
            labels={
                "org.rtbuild.vscode.sha256": settings.sha256,
                "org.rtbuild.vscode.port": str(settings.port),
            },
        )


@rtbuild.hookimpl
def runtime_plugins(config: Config) -> list[VSCodePlugin]:
    return [VSCodePlugin()]


__all__ = [
    "ARCHIVE_PATH",
    "DEFAULT_INSTALL_DIR",
    "DEFAULT_PORT",
    "ENV_SHA256",
    "ENV_URL",
    "LAUNCHER_PATH",
    "VSCodePlugin",
    "VSCodeSettings",
    "install_dockerfile",
    "launcher_script",
    "runtime_plugins",
]
