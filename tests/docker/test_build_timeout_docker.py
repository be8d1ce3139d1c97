"""`--build-timeout` on the Docker builder: a RUN that runs too long, and a base image
whose registry stalls the layer download mid-build (BuildKit would wait for ever), end in
a BuildFailedError naming the step; the engine lets go of the build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker_build_helpers as h
import pytest
from _processes import processes_naming
from _stall_registry import StallRegistry

pytestmark = [pytest.mark.engine]

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
__all__ = ["context", "images", "isolated_dirs"]  # fixtures, re-exported for pytest
RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


def _cli(*args: str, tmp_path: Path, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")}
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    started = time.monotonic()
    proc = subprocess.run(
        [RTBUILD, "build", *args, "--json"], env=env, capture_output=True, text=True, timeout=300, cwd=cwd
    )
    return proc, time.monotonic() - started


@pytest.fixture
def stalled_blobs(docker_engine: str) -> Iterator[StallRegistry]:
    stub = StallRegistry()  # answers the manifest, stalls every blob download
    yield stub
    stub.close()


def test_a_run_step_past_the_timeout_is_stopped(images: h.Images, context: Path, tmp_path: Path) -> None:
    token = f"rtbuild-timeout-{uuid.uuid4().hex[:12]}"
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN sh -c 'echo {token}; sleep 300' {token}\n")
    proc, elapsed = _cli(str(context), "-t", images.tag(), "--build-timeout", "4", tmp_path=tmp_path)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "BuildFailedError", error
    assert "build_timeout (4 s)" in error["message"]
    assert "RUN sh -c" in error["step"]
    assert any(token in line for line in error["log_tail"])
    assert elapsed < 200  # the RUN alone takes 300 s
    assert h.inspect(images.cli, images.tag()) is None
    deadline = time.monotonic() + 30
    while processes_naming(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_naming(token), "the RUN step outlived the stopped build"


def test_a_legacy_builder_step_past_the_timeout_is_named(images: h.Images, context: Path, tmp_path: Path) -> None:
    """The legacy builder (buildkit = "legacy") prints 'Step 2/2 : RUN ...': the timeout
    said 'was stopped', step 'build', and no step was reported while it ran."""
    token = f"rtbuild-timeout-{uuid.uuid4().hex[:12]}"
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN sh -c 'echo {token}; sleep 300' {token}\n")
    (context / "rtbuild.toml").write_text('[builders.docker]\nbuildkit = "legacy"\n')
    proc, _elapsed = _cli(str(context), "-t", images.tag(), "--build-timeout", "4", tmp_path=tmp_path, cwd=context)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "BuildFailedError", error
    assert error["message"].endswith(f"during step RUN sh -c 'echo {token}; sleep 300' {token}"), error["message"]
    assert error["step"].startswith("build step RUN sh -c"), error
    assert h.inspect(images.cli, images.tag()) is None
    deadline = time.monotonic() + 30
    while processes_naming(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_naming(token), "the RUN step outlived the stopped build"


def test_a_registry_stalling_the_base_layers_mid_build_is_stopped(
    images: h.Images, context: Path, tmp_path: Path, stalled_blobs: StallRegistry
) -> None:
    """The manifest answers (so the base check passes), then no blob ever comes."""
    (context / "Dockerfile").write_text(f"FROM {stalled_blobs.host}/rtbuild-test/stalled:1\nRUN true\n")
    proc, elapsed = _cli(str(context), "-t", images.tag(), "--build-timeout", "8", tmp_path=tmp_path)
    assert stalled_blobs.blob_requested.is_set(), "the engine never reached the layer download"
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "BuildFailedError", error
    assert "build_timeout (8 s)" in error["message"]
    assert elapsed < 200
    assert h.inspect(images.cli, images.tag()) is None
    # The engine cancelled its download: it closes the connection once a read returns.
    stalled_blobs.resume()
    assert stalled_blobs.blob_closed.wait(60), "the engine kept downloading after the build was stopped"
