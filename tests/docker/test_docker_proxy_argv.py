"""Docker: a proxy build arg's password is on neither the docker client's command line nor
the dry-run plan, while rtbuild's own environment holds another proxy; the build still gets
the value (the docker CLI over the engine's unix socket makes no proxied connection of its
own, so the value travels in its environment)."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild import BuildRequest
from rtbuild_docker.builder import DockerBuilder

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context

PASSWORD = "pw-Dq4-never-on-argv"
PROXY = f"http://user:{PASSWORD}@127.0.0.1:9"


def test_the_proxy_password_is_not_on_the_clients_command_line(
    images: h.Images, context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:8")  # rtbuild's own proxy: another value
    seen = tmp_path / "seen"
    wrapper = tmp_path / "docker"
    wrapper.write_text(
        f"#!/bin/sh\ntr '\\0' ' ' < /proc/$$/cmdline >> {seen}; echo >> {seen}\n"
        f'echo "env=$HTTPS_PROXY" >> {seen}\nexec {images.cli} "$@"\n'
    )
    wrapper.chmod(0o755)
    # A fresh RUN each time: the proxy args are no part of BuildKit's cache key.
    nonce = uuid.uuid4().hex
    (context / "Dockerfile").write_text(f'FROM busybox:latest\nRUN echo {nonce} "proxy-${{HTTPS_PROXY#*@}}"\n')
    request = BuildRequest(path=str(context), tags=[images.tag()], build_args={"HTTPS_PROXY": PROXY})
    builder = DockerBuilder(docker_cli=str(wrapper), skip_unchanged=False, progress="plain")
    plan = builder.plan(request)
    assert PASSWORD not in plan and "HTTPS_PROXY=http://user:***@127.0.0.1:9" in plan
    result = images.remember(builder.build_request(request))
    lines = seen.read_text().splitlines()
    builds = [line for line in lines if " build " in line]
    assert builds and all(PASSWORD not in line for line in builds), builds
    assert any("--build-arg HTTPS_PROXY " in line for line in builds), builds
    assert f"env={PROXY}" in lines  # the client got the build arg's value, to hand the build
    # Docker's predefined proxy arg reached the RUN (and, undeclared, stays out of the history).
    assert "proxy-127.0.0.1:9" in Path(str(result.details["log_path"])).read_text()
    assert PASSWORD not in h.docker(images.cli, "history", "--no-trunc", result.image).stdout
