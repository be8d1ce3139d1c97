"""Shared fixtures: the real Docker engine and real registries on 127.0.0.1.

Engine-dependent tests never skip silently under CI: with ``CI=true`` and no engine, the
fixture fails the test with what is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _processes import wait_port

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
DOCKER_CLI = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


def pytest_configure(config: pytest.Config) -> None:
    # The metrics plugin is installed in the dev venv: keep its lines out of $HOME.
    import tempfile

    if "RTBUILD_METRICS_FILE" not in os.environ:
        made = tempfile.mkdtemp(prefix="rtbuild-metrics-")
        os.environ["RTBUILD_METRICS_FILE"] = os.path.join(made, "m.jsonl")
        config.add_cleanup(lambda: shutil.rmtree(made, ignore_errors=True))  # not one dir per run in /tmp
    # A suite started in the background of a non-interactive shell (`make test &`, `nohup`)
    # inherits SIGINT ignored, and every rtbuild it starts would too: the Ctrl-C tests would
    # then wait for builds that never stop. Python's own handler restores the default in them.
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # A build that fails in a test shows its log tail and hint, not only its message: a
    # rare failure in CI (a RUN step in a Kubernetes build pod) must be diagnosable from
    # the report alone.
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if call.excinfo is not None and report.failed:
        from rtbuild.errors import AgentRuntimeBuildError

        error = call.excinfo.value
        if isinstance(error, AgentRuntimeBuildError):
            report.sections.append(("rtbuild error", error.render()))


def _missing(what: str) -> None:
    message = f"{what} (run `make engine` / scripts/engine.sh as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[str]:
    """The docker CLI path, once ``docker info`` answers; fails loudly under CI.

    At the end of the session, the dangling images that rebuilds under the same tags left
    behind are pruned (only those rtbuild built: they carry its input-digest label), so
    repeated runs on one machine do not fill the disk.
    """
    try:
        proc = subprocess.run(
            [DOCKER_CLI, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _missing(f"no Docker engine answers: {exc}")
    if proc.returncode != 0:
        _missing(f"no Docker engine answers: {proc.stderr.strip()[-300:]}")
    yield DOCKER_CLI
    if "PYTEST_XDIST_WORKER" not in os.environ:  # under xdist the controller prunes, once all workers are done
        _prune_rtbuild_dangling()


def _prune_rtbuild_dangling(cli: str = DOCKER_CLI) -> None:
    """Docker's (or, with ``cli="podman"``, Podman's) dangling images rtbuild built."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [cli, "image", "prune", "-f", "--filter", "label=org.rtbuild.input-digest"],
            capture_output=True,
            timeout=300,
        )


# Under pytest-xdist (`make test` runs `pytest -n 2 --dist loadgroup`), each
# directory is pinned to one worker: the engine suites check the engine's state around a
# build (containers, images, volumes, processes, Podman's storage), so a directory's tests
# never run beside each other; the two groups take about as long (per-test times of a
# serial run, 2026-12). A scheduler, not xdist_group marks: xdist 3.8 writes the group
# into item._nodeid, which pytest 9 no longer reads, so the marks were silently ignored.
_WORKER_GROUPS = {
    "kubernetes": "a",
    "faults": "a",
    "core": "a",
    "docker": "b",
    "podman": "b",
    "runtime": "b",
    "sbom": "b",
    "observe": "b",
}


# Files that go with another directory's group: these build on Podman too, whose suite
# checks Podman's containers and storage around each build.
_FILE_GROUPS = {"tests/faults/test_secrets_engine.py": "b"}


def _worker_group(nodeid: str) -> str:
    """The worker group of a test: its file, else its top directory under tests/, decides."""
    path = nodeid.split("::", 1)[0]
    if path in _FILE_GROUPS:
        return _FILE_GROUPS[path]
    parts = path.split("/")
    top = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
    return _WORKER_GROUPS.get(top, "a")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ByDirectoryGroup(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return _worker_group(nodeid)

    return ByDirectoryGroup(config, log)


#: The untagged images of each engine when the run began (serial, or the xdist controller):
#: those the run leaves untagged are removed at its end. Plain `docker build`s of tests and
#: Buildah's intermediate layer images carry no rtbuild label, so the labelled prune missed
#: them: about 2 Docker and 4 Podman images more after every full run.
_UNTAGGED_AT_START: dict[str, set[str]] = {}


def _untagged(cli: str) -> set[str] | None:
    try:
        proc = subprocess.run(
            [cli, "images", "-q", "--no-trunc", "--filter", "dangling=true"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):  # no such engine here
        return None
    return set(proc.stdout.split()) if proc.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    for cli in (DOCKER_CLI, "podman"):
        found = _untagged(cli)
        if found is not None:
            _UNTAGGED_AT_START[cli] = found


def pytest_sessionfinish(session: pytest.Session) -> None:
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    # The controller of an xdist run (numprocesses set); a serial run pruned in its fixtures.
    if getattr(session.config.option, "numprocesses", None):
        _prune_rtbuild_dangling()  # a missing docker CLI is an OSError it swallows
        _prune_rtbuild_dangling("podman")
    for cli, before in _UNTAGGED_AT_START.items():
        left = sorted((_untagged(cli) or set()) - before)
        if left:  # without force: one a container uses, or a parent of a kept image, stays
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run([cli, "rmi", *left], capture_output=True, timeout=300)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Registry:
    host: str  # "127.0.0.1:PORT"
    root: Path
    username: str | None = None
    password: str | None = None

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"


@pytest.fixture(scope="session")
def start_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Registry]]:
    """Factory: ``start_registry(auth=False)`` runs a real docker-registry on 127.0.0.1."""
    if not os.path.exists(REGISTRY_BIN):
        _missing("Debian's docker-registry is not installed")
    procs: list[subprocess.Popen[bytes]] = []

    def start(auth: bool = False, username: str = "rtuser", password: str = "rtpass-123") -> Registry:
        root = tmp_path_factory.mktemp("registry")
        port = free_port()
        auth_block = ""
        if auth:
            htpasswd = _htpasswd(username, password)
            (root / "htpasswd").write_text(htpasswd)
            auth_block = f"auth:\n  htpasswd:\n    realm: rtbuild-test\n    path: {root / 'htpasswd'}\n"
        (root / "config.yml").write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n" + auth_block
        )
        log = root / "registry.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=out, stderr=out)
        procs.append(proc)
        wait_port(port, proc, log)
        return Registry(f"127.0.0.1:{port}", root, username if auth else None, password if auth else None)

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _htpasswd(username: str, password: str) -> str:
    tool = shutil.which("htpasswd")
    if tool:
        return subprocess.run([tool, "-Bbn", username, password], check=True, capture_output=True, text=True).stdout
    import bcrypt  # fallback when apache2-utils is absent

    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"


@pytest.fixture(scope="session")
def registry(start_registry: Callable[..., Registry]) -> Registry:
    """A plain (no auth) registry shared by the session."""
    return start_registry(auth=False)


@pytest.fixture(scope="session")
def auth_registry(start_registry: Callable[..., Registry]) -> Registry:
    """A registry with htpasswd auth (``registry.username`` / ``registry.password``)."""
    return start_registry(auth=True)


@pytest.fixture
def edited_meanwhile(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AbstractContextManager[None]]:
    """``with edited_meanwhile(module, "name", path, during, after):`` makes each call of
    ``module.name`` write ``during`` to ``path`` first and ``after`` once it returns: a file
    edited between rtbuild's hash and the engine's (or the context tar's) read, then
    written back. Only inside the block (``monkeypatch.undo()`` would undo the test's
    other patches too)."""

    @contextlib.contextmanager
    def patch(module: Any, name: str, path: Path, during: str, after: str) -> Iterator[None]:
        real = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            path.write_text(during)
            try:
                return real(*args, **kwargs)
            finally:
                path.write_text(after)

        with monkeypatch.context() as patched:
            patched.setattr(module, name, wrapper)
            yield

    return patch
