"""PodmanBuilder passes the builder conformance suite (rtbuild.testing.BuilderContract) on the
real podman."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from _podman_support import PODMAN
from rtbuild import Config, RuntimeBuilder
from rtbuild.testing import BuilderContract
from rtbuild_podman import PodmanBuilder

pytestmark = pytest.mark.engine


class TestPodmanBuilderContract(BuilderContract):
    reports_cached = True  # the no-op skip through the core's input digest
    base_image = "busybox:latest"

    @pytest.fixture
    def builder(self, podman_cli: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeBuilder]:
        builder = PodmanBuilder.from_config(Config(), "podman")
        builder.log_dir = str(tmp_path_factory.mktemp("podman-logs"))
        builder.name = "podman"
        yield builder

    def read_file(self, builder: RuntimeBuilder, image: str, path: str) -> bytes | None:
        proc = subprocess.run(
            [PODMAN, "run", "--rm", "--network=none", image, "cat", path], capture_output=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return proc.stdout

    def cleanup(self, builder: RuntimeBuilder, tags: list[str]) -> None:
        subprocess.run([PODMAN, "rmi", "-f", *tags], capture_output=True, timeout=300)
