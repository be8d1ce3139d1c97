"""A no-op ``rtbuild build`` imports only what the no-op needs (the P1a start-up budget)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context

#: Never on the no-op path: the docker SDK and its HTTP stack, the engine runner
#: (subprocess, ctypes), the failure parser, registry credentials, the prune policy, the
#: metadata scan (cached), the first-build machinery; OpenSSL (hashlib's ``_hashlib``,
#: ~10 ms to load: the input digest's BLAKE2b is built in).
NOT_IMPORTED = (
    "docker",
    "_hashlib",
    "requests",
    "urllib3",
    "http.client",
    "ctypes",
    "subprocess",
    "email",
    "importlib.metadata",
    "rtbuild.enginekit._runner",
    "rtbuild.enginekit._failures",
    "rtbuild.enginekit._firstbuild",
    "rtbuild.oci._credentials",
    "rtbuild._observe.prune",
    "rtbuild.context._watch",
    "rtbuild.context._resident",
    "rtbuild_docker.platforms",
)


def test_a_no_op_build_imports_nothing_it_does_not_use(images: h.Images, context: Path) -> None:
    tag = images.tag()
    first = h.cli_build(str(context), "-t", tag, "--json")
    assert first.returncode == 0, first.stderr
    h.cli_build(str(context), "-t", tag)  # warm the entry-point and probe caches
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", h.RTBUILD, "build", str(context), "-t", tag, "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert json.loads(proc.stdout)["cached"] is True, proc.stderr
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    loaded = sorted(name for name in NOT_IMPORTED if name in modules)
    assert not loaded, f"a no-op build imported {loaded}"
