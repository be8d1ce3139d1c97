"""`--build-timeout` on the Podman builder: the build is stopped at the deadline with a
BuildFailedError naming the step, and its RUN process and working container go with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _podman_support import Names, external_containers, podman, processes_naming, write_context

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


def test_a_podman_build_past_the_timeout_is_stopped(names: Names, tmp_path: Path) -> None:
    token = f"rtbuild-timeout-{uuid.uuid4().hex[:12]}"
    ctx = write_context(tmp_path / "ctx", f"FROM busybox:latest\nRUN echo {token}; sleep 300; echo {token} done\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTBUILD_", "DOCKER_"))}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    before = external_containers()
    tag = names.new("localhost/rtbuild-test/timeout")
    started = time.monotonic()
    proc = subprocess.run(
        [RTBUILD, "build", str(ctx), "-t", tag, "--builder", "podman", "--build-timeout", "5", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "BuildFailedError", error
    assert "build_timeout (5 s)" in error["message"]
    assert "RUN echo" in error["step"]
    assert time.monotonic() - started < 200
    assert not processes_naming(token), "the RUN process outlived the stopped build"
    assert not external_containers() - before, "a working container outlived the stopped build"
    assert podman("image", "exists", tag, check=False).returncode != 0
