"""A context file the user running rtbuild cannot read: the docker 20.10 client's BuildKit
sender sends it as an empty file and the build succeeds, so a first build exited 0 with
an image holding an empty file where the context holds content ('no input digest kept'),
while every later request failed at the hash (exit 2). The first build now fails the
same way and leaves no tag. Root has CAP_DAC_OVERRIDE, so as root the CLI runs without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
DROP = "-dac_override,-dac_read_search"


def _without_dac_override(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to run as root without CAP_DAC_OVERRIDE")
    return [setpriv, f"--bounding-set={DROP}", f"--inh-caps={DROP}", *argv]


def test_a_first_build_with_an_unreadable_file_fails_and_tags_nothing(images: h.Images, context: Path) -> None:
    secret = context / "secret.txt"
    secret.write_text("contents the image would lose\n")
    secret.chmod(0)
    if os.geteuid() == 0:
        os.chown(secret, 4321, 4321)  # not the owner either
    argv = _without_dac_override([h.RTBUILD, "build", str(context), "-t", images.tag(), "--json"])
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    error = json.loads(proc.stdout)
    assert error["error"] == "BuildContextError" and "secret.txt" in error["message"]
    assert error["step"] == "hash context" and ".dockerignore" in error["hint"]
    assert "Traceback" not in proc.stderr
    assert h.inspect(images.cli, images.tag()) is None
