"""A ``--build-arg`` given through ``--extra`` counts as the request's own: the base image
a FROM line names through it is an input of the no-op skip."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def test_a_base_named_by_an_extra_build_arg_is_an_input(images: h.Images, context: Path) -> None:
    """``ARG BASE`` / ``FROM $BASE`` with ``--extra=--build-arg=BASE=NAME``: the analysis
    read BASE's default, so NAME's image ID was no input; after NAME was re-tagged to
    another image the next request was a skip whose image was built on the old one."""
    base = f"rtbuild-test/base-{uuid.uuid4().hex[:8]}:1"
    h.docker(images.cli, "tag", "busybox:latest", base)
    try:
        (context / "Dockerfile").write_text("ARG BASE=busybox:latest\nFROM $BASE\nRUN ls / > /listing\n")
        argv = [str(context), "-t", images.tag(), f"--extra=--build-arg=BASE={base}", "--json"]
        for expect_cached in (False, True):
            result = h.cli_build(*argv)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["cached"] is expect_cached
            images.ids.add(json.loads(result.stdout)["details"]["image_id"])
        h.docker(images.cli, "tag", "debian:bookworm", base)
        rebuilt = h.cli_build(*argv)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert json.loads(rebuilt.stdout)["cached"] is False
        images.ids.add(json.loads(rebuilt.stdout)["details"]["image_id"])
        listing = h.docker(images.cli, "run", "--rm", images.tag(), "cat", "/listing").stdout.split()
        assert "boot" in listing  # debian's root, not busybox's
    finally:
        h.docker(images.cli, "rmi", base, check=False)


def test_a_build_arg_the_client_takes_from_the_environment_is_masked(images: h.Images, context: Path) -> None:
    """``--extra=--build-arg=API_TOKEN`` (no value): the docker client gives the arg the value
    of API_TOKEN in its environment, rtbuild's. rtbuild read only ``K=V`` forms: no warning,
    and a step echoing the arg showed the token in the progress and the log (Podman's
    builder masked it since ec2790d)."""
    token = f"tok-{uuid.uuid4().hex}-never-shown"
    (context / "Dockerfile").write_text('FROM busybox:latest\nARG API_TOKEN\nRUN echo "tok=$API_TOKEN"\n')
    result = h.cli_build(
        str(context), "-t", images.tag(), "--no-cache", "--extra=--build-arg=API_TOKEN", env={"API_TOKEN": token}
    )
    assert result.returncode == 0, result.stderr
    assert "tok=***" in result.stderr  # the client did pass the value
    assert token not in result.stderr + result.stdout
    assert "API_TOKEN look secret" in result.stderr
