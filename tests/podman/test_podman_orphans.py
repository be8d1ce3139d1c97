"""What a killed or interrupted rtbuild leaves behind on Podman: no podman process, no
credentials on disk."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _podman_support import processes_naming
from _stall_registry import StallRegistry

pytestmark = [pytest.mark.engine]

PASSWORD = "pw-3b9d1c-on-no-disk"
RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


@pytest.fixture
def stalled() -> Iterator[StallRegistry]:
    stub = StallRegistry()
    yield stub
    stub.close()


def files_holding(root: Path, secret: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and secret in p.read_bytes()]


def cli_env(tmp_path: Path, host: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTBUILD_", "DOCKER_"))}
    (tmp_path / "tmp").mkdir()
    auth = tmp_path / "auth.json"
    pair = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    auth.write_text(json.dumps({"auths": {host: {"auth": pair}}}))
    env.update(
        TMPDIR=str(tmp_path / "tmp"),
        REGISTRY_AUTH_FILE=str(auth),
        DOCKER_CONFIG=str(tmp_path / "no-docker-config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    return env


def test_kill_9_during_a_pull_leaves_no_podman_and_no_auth_file(stalled: StallRegistry, tmp_path: Path) -> None:
    image = f"{stalled.host}/rtbuild-test/stalled:1"
    proc = subprocess.Popen(
        [RTBUILD, "exists", image, "--builder", "podman"],
        env=cli_env(tmp_path, stalled.host),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert stalled.blob_requested.wait(60), "podman never reached the blob download"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while processes_naming(stalled.host) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = processes_naming(stalled.host)
        for pid in left:  # this test's own orphans only
            os.kill(pid, signal.SIGKILL)
        assert not left, "podman pull outlived rtbuild"
        assert not files_holding(tmp_path / "tmp", base64.b64encode(f"user:{PASSWORD}".encode()))
        assert not list((tmp_path / "tmp").rglob("rtbuild-podman-auth-*"))
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_stalled_pull_ends_in_a_registry_error_exit_3(stalled: StallRegistry, tmp_path: Path) -> None:
    """The registry answers the manifest HEAD, then never sends a blob: ``exists`` must not
    hang (Docker's pull deadline; here ``[builders.podman] pull_timeout``, shortened)."""
    env = cli_env(tmp_path, stalled.host)
    config = tmp_path / "rtbuild.toml"
    config.write_text("[builders.podman]\npull_timeout = 3\n")
    env["RTBUILD_CONFIG"] = str(config)
    image = f"{stalled.host}/rtbuild-test/stalled:1"
    try:
        proc = subprocess.run(
            [RTBUILD, "exists", image, "--builder", "podman"], env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        for pid in processes_naming(stalled.host):
            os.kill(pid, signal.SIGKILL)
        raise
    assert proc.returncode == 3, proc.stderr
    assert "did not finish within 3 s" in proc.stderr
    assert stalled.blob_requested.is_set()
    assert not processes_naming(stalled.host), "the stalled podman pull was left running"
    # containers/image's temp dir for the pull (storageNNN, in $TMPDIR) went with podman's own
    # TMPDIR: a stopped pull left it behind before.
    assert not list((tmp_path / "tmp").iterdir())


def test_a_stalled_pull_is_stopped_at_the_deadline(stalled: StallRegistry, podman_cli: str, tmp_path: Path) -> None:
    import threading

    from rtbuild import RegistryError
    from rtbuild_podman import PodmanBuilder

    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    builder.podman.pull_timeout = 2
    outcome: list[BaseException | bool] = []

    def ask() -> None:
        try:
            outcome.append(builder.image_exists(f"{stalled.host}/rtbuild-test/stalled:2"))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=ask, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(60)
    hung = worker.is_alive()
    for pid in processes_naming(stalled.host):  # ends a hung pull (before the fix)
        os.kill(pid, signal.SIGKILL)
    worker.join(30)
    assert not hung, "image_exists hung on a stalled pull"
    assert isinstance(outcome[0], RegistryError), outcome
    assert "did not finish within 2 s" in outcome[0].message
    assert time.monotonic() - started < 30


def test_a_pull_without_progress_is_stopped_before_its_overall_bound(
    stalled: StallRegistry, podman_cli: str, tmp_path: Path
) -> None:
    """The blob never comes: the pull ends after the stall bound (as Docker's), not at pull_timeout."""
    import threading

    from rtbuild import RegistryError
    from rtbuild_podman import PodmanBuilder

    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    builder.podman.pull_stall_timeout = 3
    outcome: list[BaseException | bool] = []

    def ask() -> None:
        try:
            outcome.append(builder.image_exists(f"{stalled.host}/rtbuild-test/stalled:3"))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(90)
    hung = worker.is_alive()
    for pid in processes_naming(stalled.host):  # ends a hung pull (before the fix)
        os.kill(pid, signal.SIGKILL)
    worker.join(30)
    assert not hung, "image_exists waited past the stall bound on a pull without progress"
    assert isinstance(outcome[0], RegistryError), outcome
    assert "stalled: no progress for 3 s" in outcome[0].message
    assert outcome[0].step == "pull image"
    assert not processes_naming(stalled.host), "the stalled podman pull was left running"
