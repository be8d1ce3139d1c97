"""A base image on a loopback (plain-http) registry: ``podman build`` pulls it without TLS
verification, as exists/pull/push already do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _podman_support import Names, podman, write_context
from rtbuild import BuildRequest
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]


def test_a_base_on_a_loopback_registry_builds(names: Names, registry: Any, tmp_path: Path, podman_cli: str) -> None:
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    base = registry.ref(names.new("rtbuild-test/base"))
    names.made.append(base)
    podman("tag", "docker.io/library/busybox:latest", base)
    builder.push(base)
    podman("rmi", base)  # only the registry has it now: the build must pull it
    ctx = write_context(tmp_path / "ctx", f"FROM {base}\nRUN echo built-on-loopback > /f\n")
    request = BuildRequest(path=str(ctx), tags=[names.new("localhost/rtbuild-test/insecure-base")])
    assert "--tls-verify=false" in builder.plan(request)
    builder.build_request(request)
    assert podman("run", "--rm", request.tags[0], "cat", "/f").stdout == "built-on-loopback\n"


def test_a_secure_base_keeps_tls_verification(tmp_path: Path, podman_cli: str) -> None:
    """--tls-verify is one flag for every registry of the build: never off for a base on a
    registry that is verified (here mixed with a loopback one)."""
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    mixed = write_context(tmp_path / "mixed", "FROM 127.0.0.1:5999/a:1 AS a\nFROM registry.example.com/b:1\n")
    assert "--tls-verify" not in builder.plan(BuildRequest(path=str(mixed), tags=["localhost/rtbuild-test/x:1"]))
    secure = write_context(tmp_path / "secure", "FROM busybox:latest\n")
    assert "--tls-verify" not in builder.plan(BuildRequest(path=str(secure), tags=["localhost/rtbuild-test/x:1"]))
