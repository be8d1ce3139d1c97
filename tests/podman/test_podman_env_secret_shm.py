"""A Podman build stopped mid-RUN leaves no copy of an ``env=`` secret behind. Buildah copied
the value of ``--secret id=X,env=VAR`` to ``/dev/shm/buildahNNN`` for the RUN and removed it
only when the step finished: a build stopped by ``--build-timeout`` (or Ctrl-C, SIGTERM) left
the secret there for good. rtbuild now hands it to podman as an in-memory ``src=`` file."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _podman_support import Names, write_context

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))
SHM = Path("/dev/shm")


def _holding(value: bytes) -> list[Path]:
    found = []
    for path in SHM.iterdir() if SHM.is_dir() else []:
        try:
            if path.is_file() and value in path.read_bytes():
                found.append(path)
        except OSError:
            continue
    return found


def test_a_stopped_build_leaves_no_env_secret_in_dev_shm(names: Names, tmp_path: Path) -> None:
    value = f"shm-secret-{uuid.uuid4().hex}"
    ctx = write_context(
        tmp_path / "ctx", "FROM busybox:latest\nRUN --mount=type=secret,id=tok wc -c /run/secrets/tok; sleep 300\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTBUILD_", "DOCKER_"))}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"), SHM_TEST_SECRET=value)
    tag = names.new("localhost/rtbuild-test/shm-secret")
    argv = [RTBUILD, "build", str(ctx), "-t", tag, "--builder", "podman", "--no-cache", "--build-timeout", "6"]
    try:
        proc = subprocess.run(
            [*argv, "--secret", "id=tok,env=SHM_TEST_SECRET"],
            env=env,
            capture_output=True,
            text=True,
            timeout=280,
        )
        assert proc.returncode == 1, proc.stderr
        assert f"{len(value)} /run/secrets/tok" in proc.stderr  # the RUN read the secret whole
        assert "build_timeout (6 s)" in proc.stderr
        assert _holding(value.encode()) == []
    finally:
        for path in _holding(value.encode()):  # what the old code left: remove it all the same
            path.unlink()
