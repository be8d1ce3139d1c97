"""DockerBuilder passes the builder conformance suite (rtbuild.testing.BuilderContract) on the
real engine, plus what the issue asks of it: `--no-plugins build --target` builds that stage."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild import Config, RuntimeBuilder
from rtbuild.testing import STAGE_LABEL, BuilderContract
from rtbuild_docker.builder import DockerBuilder

pytestmark = pytest.mark.engine

isolated_dirs = h.isolated_dirs


class TestDockerBuilderContract(BuilderContract):
    reports_cached = True  # the no-op skip
    base_image = "busybox:latest"

    @pytest.fixture
    def builder(self, docker_engine: str, isolated_dirs: Path) -> Iterator[RuntimeBuilder]:
        builder = DockerBuilder.from_config(Config(), "docker")
        builder.name = "docker"
        yield builder

    def read_file(self, builder: RuntimeBuilder, image: str, path: str) -> bytes | None:
        proc = subprocess.run(
            ["docker", "run", "--rm", "--network=none", image, "cat", path],
            capture_output=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return proc.stdout

    def cleanup(self, builder: RuntimeBuilder, tags: list[str]) -> None:
        ids = {info.id for info in map(builder.inspect_image, tags) if info is not None}
        subprocess.run(["docker", "image", "rm", "-f", *tags, *ids], capture_output=True, timeout=300)


def test_no_plugins_build_target_builds_that_stage(images: h.Images, isolated_dirs: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "stages"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM busybox:latest AS test\nLABEL {STAGE_LABEL}=test\n"
        f"FROM busybox:latest AS final\nLABEL {STAGE_LABEL}=final\n"
    )
    tag = images.tag("target")
    proc = subprocess.run(
        [h.RTBUILD, "--no-plugins", "build", str(ctx), "-t", tag, "--target", "test", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{tag}\n"
    info = h.inspect(images.cli, tag)
    assert info is not None and info["Config"]["Labels"][STAGE_LABEL] == "test"


images = h.images
