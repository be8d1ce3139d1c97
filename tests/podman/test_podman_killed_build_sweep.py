"""A `kill -9` of rtbuild mid-RUN leaves Podman's RUN container, working container and
TMPDIR behind (nothing runs to clean up); the next Podman build removes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _podman_support import Names, external_containers, podman, processes_naming, runc_bundles_under, write_context

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


def test_the_next_build_removes_what_a_killed_build_left(names: Names, tmp_path: Path) -> None:
    token = f"rtbuild-test-{uuid.uuid4().hex[:12]}"  # the RUN's shell stays, naming it
    slow = write_context(tmp_path / "slow", f"FROM busybox:latest\nRUN echo {token}; sleep 300; echo {token} done\n")
    quick = write_context(tmp_path / "quick", f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /f\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTBUILD_", "DOCKER_"))}
    env.update(TMPDIR=str(tmp), XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    before = external_containers()
    killed = subprocess.Popen(
        [RTBUILD, "build", str(slow), "-t", names.new("localhost/rtbuild-test/killed"), "--builder", "podman"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert killed.stderr is not None
        for line in killed.stderr:
            if line.strip() == token:
                break  # the RUN step runs
        else:
            pytest.fail("the RUN step never started")
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(10)
        # What kill -9 leaves (podman itself dies with rtbuild, PR_SET_PDEATHSIG):
        deadline = time.monotonic() + 10
        while not runc_bundles_under(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runc_bundles_under(tmp_path), "no RUN container was left: this test shows nothing"
        assert processes_naming(token)
        assert list(tmp.glob("rtbuild-podman-*"))

        # A concurrent build's TMPDIR (a live owner) must survive the sweep.
        live = subprocess.Popen(["sleep", "60"])
        alive = tmp / "rtbuild-podman-alive"
        alive.mkdir()
        start = (Path(f"/proc/{live.pid}/stat").read_text().rpartition(")")[2].split())[19]
        namespace = os.readlink("/proc/self/ns/pid")
        (alive / ".rtbuild-owner").write_text(f"{live.pid} {start} {namespace} {uuid.uuid4().hex}\n")

        after = subprocess.run(
            [RTBUILD, "build", str(quick), "-t", names.new("localhost/rtbuild-test/after"), "--builder", "podman"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        live.kill()
        live.wait()
        assert after.returncode == 0, after.stderr
        assert "removed what 1 killed podman build(s) (RUN and working containers) left behind" in after.stderr
        assert "pull(s)" not in after.stderr
        assert not processes_naming(token), "the killed build's RUN process still runs"
        assert not runc_bundles_under(tmp_path), "the killed build's RUN container is still there"
        assert not external_containers() - before, "the killed build's working container is still there"
        assert [p.name for p in tmp.glob("rtbuild-podman-*")] == ["rtbuild-podman-alive"]
    finally:
        if killed.poll() is None:
            killed.kill()
        for bundle in runc_bundles_under(tmp_path):  # what the builder did not clean up
            subprocess.run(["runc", "delete", "--force", bundle], capture_output=True, check=False)
        if external_containers() - before:
            podman("rm", "--force", *(external_containers() - before), check=False)
