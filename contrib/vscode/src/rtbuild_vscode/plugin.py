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
from typing import TYPE_CHECKING, Any

import rtbuild
from rtbuild import RuntimeRequirements
from rtbuild.errors import ConfigError

from .download import fetch_verified, normalize_sha256, probe_sha256

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


@dataclass(frozen=True)
class VSCodeSettings:
    url: str
    sha256: str
    install_dir: str = DEFAULT_INSTALL_DIR
    port: int = DEFAULT_PORT

    @classmethod
    def from_config(cls, config: Config, env: Mapping[str, str] | None = None) -> VSCodeSettings:
        env = os.environ if env is None else env
        table: dict[str, Any] = config.plugin_config(NAME)
        unknown = sorted(set(table) - {"url", "sha256", "install_dir", "port"})
        if unknown:
            raise _config_error(
                f"unknown key(s) in [plugins.vscode]: {', '.join(unknown)}",
                "known keys: url, sha256, install_dir, port (see docs/plugins/vscode.md)",
            )
        url = str(env.get(ENV_URL) or table.get("url") or "").strip()
        if not url:
            raise _config_error(
                "the vscode plugin needs the URL of an openvscode-server release archive",
                f"set {ENV_URL} or add to rtbuild.toml:\n{_EXAMPLE}",
            )
        raw_sha = str(env.get(ENV_SHA256) or table.get("sha256") or "").strip()
        if not raw_sha:
            actual = probe_sha256(url)
            found = f"; {url} currently serves sha256 {actual}" if actual else ""
            raise _config_error(
                f"no sha256 configured for {url}: expected (not set), actual {actual or 'unknown'}",
                f"set [plugins.vscode] sha256 or {ENV_SHA256} to the release's published digest{found}"
                " (verify it against the release page before trusting it)",
            )
        sha256 = normalize_sha256(raw_sha, source="[plugins.vscode] sha256")
        install_dir = str(table.get("install_dir", DEFAULT_INSTALL_DIR)).rstrip("/") or "/"
        if not _SAFE_DIR.match(install_dir) or {".", ".."} & set(install_dir.split("/")):
            raise _config_error(
                f"[plugins.vscode] install_dir = {install_dir!r} is not a plain absolute path",
                "use an absolute path of letters, digits and . _ + - /, e.g. /opt/openvscode-server",
            )
        port = table.get("port", DEFAULT_PORT)
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _config_error(f"[plugins.vscode] port = {port!r} is not a TCP port", "use an integer 1-65535")
        return cls(url=url, sha256=sha256, install_dir=install_dir, port=port)


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
