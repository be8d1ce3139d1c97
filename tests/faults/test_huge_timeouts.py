"""Timeouts far beyond any build (1e10 s: 'effectively none', as some write it) are
accepted by the configuration and must then behave as no bound: each reached a wait that
refuses more than about 292 years (threading.TIMEOUT_MAX), an OverflowError."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import pytest
from rtbuild.oci import manifest_exists, parse_reference
from rtbuild_docker.builder import DockerBuilder

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def test_a_huge_build_timeout_is_no_bound(images: h.Images, context: Path) -> None:
    """The timer's thread died with a traceback on stderr ("Exception in thread
    rtbuild-build-timeout: ... OverflowError") and the build went on unbounded."""
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex}\n")
    out = h.cli_build(str(context), "-t", images.tag(), "--build-timeout", "1e10")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "Exception in thread" not in out.stderr, out.stderr
    assert out.stdout == f"{images.tag()}\n"


def test_huge_push_bounds_are_no_bound(docker_engine: str, registry: Any) -> None:
    """[builders.docker] push_timeout and push_stall_timeout = 1e10: 'internal error:
    OverflowError: timestamp out of range for platform time_t', blamed on the builder."""
    image = f"{registry.host}/rt-test/huge-bounds:{uuid.uuid4().hex[:10]}"
    subprocess.run([docker_engine, "tag", "busybox:latest", image], check=True, capture_output=True)
    try:
        DockerBuilder(push_timeout=1e10, push_stall_timeout=1e10).push(image)
    finally:
        subprocess.run([docker_engine, "rmi", image], check=False, capture_output=True)
    assert manifest_exists(parse_reference(image))
