"""A base image whose registry accepts connections and never answers: a RegistryError, not a hang.

BuildKit waits for ever at ``[internal] load metadata for REG/...``; rtbuild asks the
registry itself (bounded, ``BASE_CHECK_TIMEOUT_S``, patched small here) before the engine
starts, on the no-op path's first build and on a build that skips the no-op check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import pytest
from _registry_support import ImageTags, closed_port, docker, local_image_id, scratch_images
from _stall_registry import StallRegistry
from rtbuild.errors import RegistryError
from rtbuild_docker.images import push_image

pytestmark = [pytest.mark.engine, pytest.mark.registry]

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
__all__ = ["context", "images", "isolated_dirs", "scratch_images"]  # fixtures, re-exported for pytest

#: Runs the CLI with the registry check's deadline set small (a module constant, for tests).
_CLI = (
    "import sys, rtbuild_docker.bases as m; m.BASE_CHECK_TIMEOUT_S = float(sys.argv[1]); "
    "from rtbuild.cli import main; sys.exit(main(sys.argv[2:]))"
)


@pytest.fixture
def silent_registry(docker_engine: str) -> Iterator[StallRegistry]:
    stub = StallRegistry("silent")
    yield stub
    stub.close()


def test_a_base_registry_that_refuses_connections_is_a_registry_error(images: h.Images, context: Path) -> None:
    host = f"127.0.0.1:{closed_port()}"
    (context / "Dockerfile").write_text(f"FROM {host}/rtbuild-test/base:1\nRUN true\n")
    with pytest.raises(RegistryError) as info:
        h.build(images, context)
    assert f"registry {host} is unreachable" in info.value.message
    assert info.value.step == "check base image"


@pytest.mark.parametrize("extra", [[], ["--extra=--pull"]], ids=["no-op-check", "skip-off"])
def test_a_base_registry_that_never_answers_is_a_registry_error(
    images: h.Images, context: Path, silent_registry: StallRegistry, extra: list[str], tmp_path: Path
) -> None:
    base = f"{silent_registry.host}/rtbuild-test/base:1"
    (context / "Dockerfile").write_text(f"FROM {base}\nRUN true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")}
    env["DOCKER_CONFIG"] = str(tmp_path)
    started = time.monotonic()
    # Before the fix this never returned: the timeout makes that a failure, not a hang.
    proc = subprocess.run(
        [sys.executable, "-c", _CLI, "3", "build", str(context), "-t", images.tag(), "--json", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "RegistryError", error
    assert base in error["message"]
    assert silent_registry.host in error["message"]
    assert error["step"] == "check base image"
    assert elapsed < 60
    assert h.inspect(images.cli, images.tag()) is None


def test_a_base_only_in_a_serving_registry_still_builds(
    images: h.Images, context: Path, scratch_images: ImageTags, registry: Any
) -> None:
    # The check must not stand in the way: the registry answers, the engine pulls.
    base = scratch_images.tag(registry.host, "rtbuild-test/base")
    push_image(base)
    docker("rmi", base)
    assert local_image_id(base) is None
    (context / "Dockerfile").write_text(f"FROM {base}\nRUN true\n")
    result = h.build(images, context)  # BuildKit pulls the base into its own store
    assert result.cached is False
    assert h.inspect(images.cli, images.tag()) is not None
