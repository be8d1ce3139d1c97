"""A pull on demand whose registry stalls is bounded: `rtbuild exists` says "could not tell".

The registry (a loopback stub) answers the manifest, so rtbuild's HEAD says "present" and
the engine starts pulling; then it never sends a blob, or drips one forever. rtbuild must
give up (no progress for ``PULL_STALL_S``, or ``PULL_TIMEOUT_S`` in all, both patched small
here), exit 3, and close the pull stream so that the engine cancels the pull (seen
in-process, where no process exit closes it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _registry_support import local_image_id
from _stall_registry import StallRegistry, bounded
from rtbuild.errors import RegistryError
from rtbuild_docker import images

pytestmark = [pytest.mark.engine, pytest.mark.registry]

#: Runs the CLI with the pull bounds set small (they are module constants, for tests).
_CLI = (
    "import sys, rtbuild_docker.images as m; m.PULL_STALL_S = float(sys.argv[1]); "
    "m.PULL_TIMEOUT_S = float(sys.argv[2]); from rtbuild.cli import main; sys.exit(main(sys.argv[3:]))"
)


@pytest.fixture
def stub_registry(request: pytest.FixtureRequest, docker_engine: str) -> Iterator[StallRegistry]:
    stub = StallRegistry("manifest", blobs=request.param)
    yield stub
    stub.close()


def _exists(image: str, tmp_path: Path, stall: float, overall: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")}
    env["DOCKER_CONFIG"] = str(tmp_path)
    # Before the fix this never returned: the timeout makes that a failure, not a hang.
    return subprocess.run(
        [sys.executable, "-c", _CLI, str(stall), str(overall), "exists", image, "--pull"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.parametrize("stub_registry", ["stall"], indirect=True)
def test_a_stalled_pull_is_could_not_tell(stub_registry: StallRegistry, tmp_path: Path) -> None:
    image = f"{stub_registry.host}/rtbuild-test/stalls:2"
    started = time.monotonic()
    proc = _exists(image, tmp_path, stall=4, overall=600)
    elapsed = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr  # could not tell (docs/cli.md)
    assert stub_registry.blob_requests >= 1  # the engine was really pulling
    assert "no progress for 4 s" in proc.stderr
    assert stub_registry.host in proc.stderr
    assert "hint:" in proc.stderr
    assert elapsed < 60


@pytest.mark.parametrize("stub_registry", ["stall"], indirect=True)
def test_a_stalled_pull_is_stopped_in_the_engine(
    stub_registry: StallRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # In this process (a service's case: nothing ends with the process), the pull must
    # still end in the engine once rtbuild gives up.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr(images, "PULL_STALL_S", 3.0, raising=False)
    image = f"{stub_registry.host}/rtbuild-test/stalls:2"
    error = bounded(lambda: images.image_exists(image, pull_from_repo=True), within=60, action="pull")
    assert isinstance(error, RegistryError), error
    assert "stalled: no progress for 3 s" in error.message
    assert stub_registry.blob_requests >= 1
    # The registry sends again: a pull still running would read on; a cancelled one closes.
    stub_registry.resume()
    assert stub_registry.blob_closed.wait(20), "the engine kept pulling after rtbuild gave up"
    assert local_image_id(image) is None


@pytest.mark.parametrize("stub_registry", ["drip"], indirect=True)
def test_a_dripping_pull_hits_the_overall_bound(
    stub_registry: StallRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr(images, "PULL_STALL_S", 30.0, raising=False)
    monkeypatch.setattr(images, "PULL_TIMEOUT_S", 8.0, raising=False)
    image = f"{stub_registry.host}/rtbuild-test/drips:2"
    started = time.monotonic()
    error = bounded(lambda: images.image_exists(image, pull_from_repo=True), within=60, action="pull")
    assert isinstance(error, RegistryError), error
    assert "did not finish within 8 s" in error.message
    assert time.monotonic() - started < 30  # the overall bound, not the stall watchdog
    assert stub_registry.blob_closed.wait(20), "the engine kept pulling after rtbuild gave up"
