"""A BuildSession on the real engine: a tmpfs mounted over a directory of the context after
its watch began (a mount raises no inotify event) must not be answered as a no-op.

Before the fix the session reported the request cached while the image held v1 and the
context, through the mount, v2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker_build_helpers as h
import pytest
from docker_build_helpers import Images, docker

images = h.images

_SCRIPT = """
import subprocess, sys
from rtbuild import BuildRequest, BuildSession, Config

ctx, tag = sys.argv[1], sys.argv[2]
with BuildSession(Config()) as session:
    build = lambda: session.build(BuildRequest(path=ctx, tags=[tag]))
    assert build().cached is False
    assert build().cached is True
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", ctx + "/data"], check=True)
    open(ctx + "/data/x", "w").write("v2 on the tmpfs")
    print(build().cached)
"""


def test_a_tmpfs_mounted_into_the_context_is_built(
    images: Images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root and unshare(1) (a private mount namespace) under CI")
        pytest.skip("needs root and unshare(1)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    ctx = tmp_path / "ctx"
    (ctx / "data").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /ctx\n")
    (ctx / "data" / "x").write_text("v1")
    script = tmp_path / "session.py"
    script.write_text(_SCRIPT)
    tag = images.tag("mount")
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, str(script), str(ctx), tag],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = docker(images.cli, "run", "--rm", tag, "cat", "/ctx/data/x").stdout
    assert proc.stdout.strip() == "False", f"reported cached; the image holds {shown!r}"
    assert shown == "v2 on the tmpfs"
