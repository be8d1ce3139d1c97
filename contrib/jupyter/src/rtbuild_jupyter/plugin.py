"""The ``jupyter`` runtime plugin: ipykernel + the Jupyter kernel gateway in a venv.

Dependency ("lock") group: python3 + python3-venv from the base's apt sources when the
base lacks them, a venv with the configured packages, and the ``python3`` kernelspec
pointing at the venv's interpreter. Source group: the ``rtbuild-jupyter-gateway`` start
script and ``EXPOSE PORT`` -- changing the port or IP does not reinstall anything.

Settings (``[plugins.jupyter]``):

* ``venv`` (default ``/opt/rtbuild/jupyter-venv``): where the venv goes.
* ``packages`` (default ``["ipykernel>=6.29", "jupyter_kernel_gateway>=3.0"]``): pip
  requirement lines installed into the venv.
* ``pip_index_url``: an index for pip (a build arg: the engine records it in the image's
  history, so a URL with credentials is refused, as is one in ``packages``).
* ``port`` (default 8888) and ``ip`` (default ``0.0.0.0``): where the start script serves.

``rtbuild-jupyter-check [CODE]`` (also in the source group) runs code in a new kernel
through the gateway and prints the output: a health check for the runtime.

Behind a TLS-intercepting proxy select ``cacerts`` too, so pip trusts the proxy's CA.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import rtbuild
from rtbuild import RuntimeRequirements, setting
from rtbuild.errors import ConfigError

if TYPE_CHECKING:
    from rtbuild import Config

NAME = "jupyter"
DEFAULT_VENV = "/opt/rtbuild/jupyter-venv"
DEFAULT_PACKAGES = ("ipykernel>=6.29", "jupyter_kernel_gateway>=3.0")
DEFAULT_PORT = 8888
DEFAULT_IP = "0.0.0.0"
REQUIREMENTS_PATH = "/opt/rtbuild/jupyter/requirements.txt"
START_SCRIPT = "/usr/local/bin/rtbuild-jupyter-gateway"
CHECK_SCRIPT = "/usr/local/bin/rtbuild-jupyter-check"
# venv is pasted into shell commands: plain absolute paths only.
_SAFE_DIR = re.compile(r"^/[A-Za-z0-9._+/-]*[A-Za-z0-9._+-]$")


def _error(message: str, hint: str) -> ConfigError:
    return ConfigError(message, step="jupyter plugin: read [plugins.jupyter]", hint=hint)


def _plain_dir(value: str) -> str | None:
    path = value.rstrip("/")
    # `.` and `..` parts would name another directory than the one written (/opt/.. is /).
    if _SAFE_DIR.match(path) and not {".", ".."} & set(path.split("/")):
        return None
    return f"is not a plain absolute path (e.g. {DEFAULT_VENV})"


def _requirements(value: list[str]) -> str | None:
    if not value or not all(p.strip() for p in value):
        return "must be a non-empty list of requirements (e.g. ['ipykernel>=6.29'])"
    if any("\n" in p for p in value):
        return "entries must be single lines (one requirement per entry)"
    for number, line in enumerate(value, 1):
        if _CREDENTIALS_IN_URL.search(line):  # the file is a layer of the image
            return f"entry {number} holds a URL with credentials, which would be copied into the image"
    return None


#: A URL with a user part (``https://__token__:PW@host``, ``https://TOKEN@host``).
_CREDENTIALS_IN_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*@")
_NO_CREDENTIALS_HINT = (
    "the image keeps it: use an index the build reaches without credentials (a local mirror"
    " or an authenticating proxy such as devpi), or pre-build a base image with the packages"
)


def _tcp_port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "is not a TCP port (use an integer 1-65535)"


def _ip(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)"
    return None


@dataclass(frozen=True)
class _Table:
    """``[plugins.jupyter]`` as written; :class:`JupyterSettings` is what the plugin uses."""

    venv: str = setting(DEFAULT_VENV, check=_plain_dir)
    packages: list[str] = setting(default_factory=lambda: list(DEFAULT_PACKAGES), check=_requirements)
    pip_index_url: str | None = setting(None)
    port: int = setting(DEFAULT_PORT, check=_tcp_port)
    ip: str = setting(DEFAULT_IP, check=_ip)


@dataclass(frozen=True)
class JupyterSettings:
    venv: str = DEFAULT_VENV
    packages: tuple[str, ...] = field(default=DEFAULT_PACKAGES)
    pip_index_url: str | None = None
    port: int = DEFAULT_PORT
    ip: str = DEFAULT_IP

    @classmethod
    def from_config(cls, config: Config) -> JupyterSettings:
        table = rtbuild.plugin_settings(_Table, config, NAME, docs="docs/plugins/jupyter.md")
        if table.pip_index_url and _CREDENTIALS_IN_URL.search(table.pip_index_url):
            # An ARG of the dependency stage: the engine records its value in the image's
            # history (`RUN |1 PIP_INDEX_URL=...`), readable by anyone who has the image.
            raise _error(
                "[plugins.jupyter] pip_index_url holds credentials (a user or token before '@'),"
                " which the engine would record in the image's history",
                _NO_CREDENTIALS_HINT,
            )
        return cls(
            venv=table.venv.rstrip("/"),
            packages=tuple(p.strip() for p in table.packages),
            pip_index_url=table.pip_index_url,
            port=table.port,
            ip=table.ip,
        )


def install_dockerfile(settings: JupyterSettings) -> str:
    """The dependency RUN steps: python3 + venv (apt-get when missing), the venv, the kernelspec."""
    venv = settings.venv
    return f"""\
RUN set -eu; \\
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then \\
      if ! command -v apt-get >/dev/null 2>&1; then \\
        echo 'rtbuild-jupyter: the base image has no python3 with venv and no apt-get to install it' >&2; exit 1; \\
      fi; \\
      export DEBIAN_FRONTEND=noninteractive; \\
      apt-get update; \\
      apt-get install -y --no-install-recommends python3 python3-venv; \\
      rm -rf /var/lib/apt/lists/*; \\
    fi
RUN set -eu; \\
    python3 -m venv {venv}; \\
    {venv}/bin/pip install --no-cache-dir --disable-pip-version-check -r {REQUIREMENTS_PATH} || {{ \\
      echo 'rtbuild-jupyter: pip install failed; behind a TLS-intercepting proxy select the cacerts plugin too' >&2; \\
      exit 1; }}; \\
    {venv}/bin/python -m ipykernel install --prefix {venv} --name python3 --display-name 'Python 3 (rtbuild)'; \\
    {venv}/bin/jupyter kernelspec list"""


def start_script(settings: JupyterSettings) -> str:
    """``rtbuild-jupyter-gateway [ARGS]``: serve the kernel gateway (env overrides the defaults)."""
    return f"""\
#!/bin/sh
# Start the Jupyter kernel gateway (installed by rtbuild-jupyter). Extra arguments are
# passed to `jupyter kernelgateway`.
#   RTBUILD_JUPYTER_PORT (default {settings.port}), RTBUILD_JUPYTER_IP (default {settings.ip}),
#   RTBUILD_JUPYTER_TOKEN (optional auth token clients send as `Authorization: token ...`)
set -e
PORT="${{RTBUILD_JUPYTER_PORT:-{settings.port}}}"
IP="${{RTBUILD_JUPYTER_IP:-{settings.ip}}}"
set -- --KernelGatewayApp.ip="$IP" --KernelGatewayApp.port="$PORT" "$@"
if [ -n "${{RTBUILD_JUPYTER_TOKEN:-}}" ]; then
  set -- --KernelGatewayApp.auth_token="$RTBUILD_JUPYTER_TOKEN" "$@"
fi
exec {settings.venv}/bin/jupyter kernelgateway "$@"
"""


def check_script(settings: JupyterSettings) -> str:
    """``rtbuild-jupyter-check [CODE]`` (see :mod:`rtbuild_jupyter.gateway_check`), run by the venv's python."""
    # imported here: importlib.resources pulls in tempfile/shutil, and loading the plugin
    # (every CLI call with all plugins enabled) must not pay for it
    from importlib import resources

    source = resources.files(__package__).joinpath("gateway_check.py").read_text(encoding="utf-8")
    return f"#!{settings.venv}/bin/python\n{source}"


class JupyterPlugin:
    """Runtime plugin ``jupyter``: see the module docstring."""

    name = NAME
    order = 0

    def requirements(self, config: Config) -> RuntimeRequirements:
        settings = JupyterSettings.from_config(config)
        build_args = {"PIP_INDEX_URL": settings.pip_index_url} if settings.pip_index_url else {}
        return RuntimeRequirements(
            dockerfile=install_dockerfile(settings),
            dependency_files={REQUIREMENTS_PATH: "".join(f"{line}\n" for line in settings.packages)},
            env={"RTBUILD_JUPYTER_VENV": settings.venv},
            build_args=build_args,
            files={START_SCRIPT: start_script(settings), CHECK_SCRIPT: check_script(settings)},
            source_dockerfile=f"EXPOSE {settings.port}",
            labels={"org.rtbuild.jupyter.port": str(settings.port), "org.rtbuild.jupyter.start": START_SCRIPT},
        )


@rtbuild.hookimpl
def runtime_plugins(config: Config) -> list[JupyterPlugin]:
    return [JupyterPlugin()]


__all__ = [
    "CHECK_SCRIPT",
    "DEFAULT_PACKAGES",
    "DEFAULT_PORT",
    "START_SCRIPT",
    "JupyterPlugin",
    "JupyterSettings",
    "runtime_plugins",
]
