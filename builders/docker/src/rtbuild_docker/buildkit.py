"""Choosing a docker client that builds through BuildKit, never the legacy builder.

``docker buildx build --load`` where a buildx plugin exists; else a CLI that still honours
``DOCKER_BUILDKIT=1`` without buildx (the 20.x clients; 23+ refuse with "BuildKit is
enabled but the buildx component is missing"). The legacy builder is used only when
``buildkit = "legacy"`` asks for it explicitly.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import stat
import threading
from dataclasses import dataclass, field

from rtbuild.enginekit import masked_repr
from rtbuild.errors import CapabilityError, ConfigError

from .settings import MODES

#: Clients from this major version on need buildx for BuildKit.
_BUILDX_REQUIRED_FROM = 23


@dataclass(frozen=True)
class BuildClient:
    """How to run one build: the argv prefix and the environment it needs."""

    cli: str
    mode: str  # "buildx" | "env" | "legacy"
    version: str = ""
    env: dict[str, str] = field(default_factory=dict)

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr

    def command(self) -> list[str]:
        if self.mode == "buildx":
            return [self.cli, "buildx", "build", "--load"]
        if self.mode == "legacy":
            # The legacy builder keeps a failed step's container unless told otherwise.
            return [self.cli, "build", "--force-rm"]
        return [self.cli, "build"]

    @property
    def buildkit(self) -> bool:
        return self.mode != "legacy"

    def require_cache_export(self) -> None:
        """``--cache-to`` is a flag of ``docker buildx build`` only: ``docker build`` (20.10 with
        DOCKER_BUILDKIT=1, or the legacy builder) refused it as an unknown flag once the context
        was hashed, with the hint to check the --extra arguments. Refused before any work."""
        if self.mode == "buildx":
            return
        raise CapabilityError(
            f"--cache-to needs docker buildx: the client {self.cli} ({self.version or 'unknown version'})"
            f" builds with `docker build` ({self.mode}), which cannot export a build cache",
            step="check capabilities",
            hint=(
                "install the buildx plugin (Debian 13: `apt-get install docker-buildx`) and leave [builders.docker]"
                ' buildkit = "auto" (or "buildx"), or drop --cache-to (--cache-from works with every client)'
            ),
        )


#: Where docker looks for CLI plugins such as buildx; their mtimes are part of the probe key.
_PLUGIN_DIRS = (
    "~/.docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def _probe_key(cli: str) -> str | None:
    """Identity of a CLI and its plugin dirs: a changed binary or plugin set re-probes."""
    try:
        st = os.stat(cli)
    except OSError:
        return None
    marks = [f"{os.path.realpath(cli)}:{st.st_size}:{st.st_mtime_ns}"]
    for directory in _PLUGIN_DIRS:
        try:
            marks.append(str(os.stat(os.path.expanduser(directory)).st_mtime_ns))
        except OSError:
            marks.append("-")
    return "|".join(marks)


def _probe_cache_path() -> str:
    from rtbuild import cache_dir

    return str(cache_dir("docker-clients.json"))


#: Held while a probe reads, runs and records: build-many's jobs all choose a client at
#: once, and without it each of them ran every CLI on a cold cache (4 jobs, 2 CLIs: 16 runs).
_PROBE_LOCK = threading.Lock()


@functools.cache
def probe(cli: str) -> tuple[str, bool]:
    """(client version, has buildx) of ``cli``; cached on disk (each probe runs the CLI)."""
    with _PROBE_LOCK:  # a thread that waited here finds the first one's record on disk
        return _probe(cli)


def _probe(cli: str) -> tuple[str, bool]:
    key = _probe_key(cli)
    path = _probe_cache_path()
    known: dict[str, list[object]] = {}
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), encoding="utf-8") as handle:  # a FIFO: no wait
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise OSError(f"{path} is not a regular file")
            loaded = json.load(handle)
        known = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    entry = known.get(key) if key else None
    if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], bool):
        return entry[0], entry[1]
    result = (_run_version(cli), _run_has_buildx(cli))
    if key:
        known[key] = list(result)
        from rtbuild import atomic_write

        with contextlib.suppress(OSError):
            atomic_write(path, json.dumps(known))
    return result


def _run_version(cli: str) -> str:
    import subprocess  # only on a probe-cache miss: a no-op build never runs the CLI

    try:
        out = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"version\s+v?(\d+\.\d+[\w.+~-]*)", out)
    return match.group(1) if match else ""


def _run_has_buildx(cli: str) -> bool:
    import subprocess

    try:
        proc = subprocess.run([cli, "buildx", "version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "buildx" in proc.stdout.lower()


def client_version(cli: str) -> str:
    """The client's version from ``docker --version`` (no daemon contact); "" if unknown."""
    return probe(cli)[0]


def has_buildx(cli: str) -> bool:
    """Whether ``docker buildx version`` works with this CLI."""
    return probe(cli)[1]


def env_buildkit_works(cli: str) -> bool:
    """Whether ``DOCKER_BUILDKIT=1 CLI build`` uses BuildKit without buildx (clients < 23)."""
    version = client_version(cli)
    major = version.split(".", 1)[0]
    return major.isdigit() and 18 <= int(major) < _BUILDX_REQUIRED_FROM


def candidate_clis(configured: str | None) -> list[str]:
    """The configured CLI only, else ``docker`` on PATH then Debian's and /usr/local's."""
    import shutil  # imported here: an exact hit never picks a client (shutil pulls in bz2, lzma)

    if configured:
        found = shutil.which(configured)
        if not found:
            raise ConfigError(
                f"docker_cli {configured!r} is not an executable",
                step="choose docker client",
                hint="set [builders.docker] docker_cli to the path of a docker CLI",
            )
        return [found]
    seen: list[str] = []
    for cli in (shutil.which("docker"), "/usr/bin/docker", "/usr/local/bin/docker"):
        if cli and os.access(cli, os.X_OK) and os.path.realpath(cli) not in map(os.path.realpath, seen):
            seen.append(cli)
    return seen


def choose_client(mode: str = "auto", docker_cli: str | None = None) -> BuildClient:
    """The first client (in :func:`candidate_clis` order) that can build with BuildKit."""
    if mode not in MODES:
        raise ConfigError(
            f"[builders.docker] buildkit = {mode!r} is not one of {', '.join(MODES)}",
            step="choose docker client",
            hint="fix buildkit in the [builders.docker] table of the configuration file",
        )
    clis = candidate_clis(docker_cli)
    if not clis:
        raise ConfigError(
            "no docker CLI found",
            step="choose docker client",
            hint="install the docker client (Debian: `apt-get install docker.io`) or set [builders.docker] docker_cli",
        )
    if mode == "legacy":
        return BuildClient(clis[0], "legacy", client_version(clis[0]), {"DOCKER_BUILDKIT": "0"})
    if mode in ("auto", "buildx"):
        for cli in clis:
            if has_buildx(cli):
                return BuildClient(cli, "buildx", client_version(cli))
    if mode in ("auto", "env"):
        for cli in clis:
            if env_buildkit_works(cli):
                return BuildClient(cli, "env", client_version(cli), {"DOCKER_BUILDKIT": "1"})
    tried = ", ".join(f"{cli} ({client_version(cli) or 'unknown version'})" for cli in clis)
    raise ConfigError(
        f"no docker client here can build with BuildKit (buildkit = {mode!r}; tried {tried})",
        step="choose docker client",
        hint=(
            "install buildx (Debian 13: `apt-get install docker-buildx`), point [builders.docker] docker_cli at"
            ' a 20.x client, or opt in to the slow legacy builder with buildkit = "legacy"'
        ),
    )


__all__ = [
    "MODES",
    "BuildClient",
    "candidate_clis",
    "choose_client",
    "client_version",
    "has_buildx",
    "probe",
]
