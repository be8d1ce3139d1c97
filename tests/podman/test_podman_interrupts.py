"""SIGINT or SIGTERM during a Podman build: no RUN process, working container or Buildah
temp dir outlives rtbuild (Podman 4.3 itself leaves all three)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _podman_support import Names, external_containers, podman, processes_naming, runc_bundles_under, write_context

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_leaves_no_process_container_or_temp_dir(
    sig: signal.Signals, names: Names, tmp_path: Path
) -> None:
    token = f"rtbuild-test-{uuid.uuid4().hex[:12]}"  # the RUN's shell stays, naming it
    ctx = write_context(tmp_path / "ctx", f"FROM busybox:latest\nRUN echo {token}; sleep 300; echo {token} done\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTBUILD_", "DOCKER_"))}
    env.update(TMPDIR=str(tmp), XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    before = external_containers()
    proc = subprocess.Popen(
        [RTBUILD, "build", str(ctx), "-t", names.new("localhost/rtbuild-test/interrupted"), "--builder", "podman"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip() == token:
                break  # the RUN step runs
        else:
            pytest.fail("the RUN step never started")
        proc.send_signal(sig)
        assert proc.wait(60) == 128 + sig
        left = processes_naming(token)
        new = external_containers() - before
        assert not left, "the RUN process outlived rtbuild"
        assert not runc_bundles_under(tmp_path), "the RUN's runc container outlived rtbuild"
        assert not new, "a working container outlived rtbuild"
        assert not list(tmp.rglob("buildah*")), "a Buildah temp dir outlived rtbuild"
    finally:
        if proc.poll() is None:
            proc.kill()
        for bundle in runc_bundles_under(tmp_path):  # what the builder did not clean up
            subprocess.run(["runc", "delete", "--force", bundle], capture_output=True, check=False)
        if external_containers() - before:
            podman("rm", "--force", *(external_containers() - before), check=False)


def test_the_run_marker_is_invisible_in_output_and_image(names: Names, tmp_path: Path, podman_cli: str) -> None:
    from rtbuild import BuildRequest
    from rtbuild_podman import PodmanBuilder

    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN echo marked > /f\n")
    name = names.new("localhost/rtbuild-test/marked")
    result = builder.build_request(BuildRequest(path=str(ctx), tags=[name], build_args={"UNUSED": "1"}))
    lines = Path(result.details["log_path"]).read_text().splitlines()
    assert any("not consumed: [UNUSED]" in line for line in lines)  # the user's own still shows
    assert not any("RTBUILD_PODMAN_RUN" in line for line in lines[1:])
    assert "RTBUILD_PODMAN_RUN" not in podman("image", "inspect", name).stdout
    assert "RTBUILD_PODMAN_RUN" not in podman("history", "--no-trunc", name).stdout
