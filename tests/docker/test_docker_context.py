"""rtbuild follows the docker CLI's context (``DOCKER_CONTEXT``, ``docker context use``).

The CLI builds on its context's engine; rtbuild's own engine calls (the no-op skip,
``exists``, inspect, push) must ask that engine too, and the CLI must get the engine
rtbuild resolved. A context pointing at a socket nobody serves proves which engine was
asked: the default socket (a real engine here) would answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild import BuildRequest
from rtbuild.errors import ConfigError
from rtbuild_docker import DockerBuilder

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
__all__ = ["context", "images", "isolated_dirs"]  # fixtures, re-exported for pytest


def _add_context(config_dir: Path, name: str, host: str) -> None:
    """Write a context as `docker context create NAME --docker host=HOST` does."""
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}})
    )


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # unix socket paths are limited to 107 bytes: pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="rtctx-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _cli_env(config_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_") and k != "DOCKER_HOST"}
    return {**env, "DOCKER_CONFIG": str(config_dir), **extra}


def test_docker_context_env_is_the_engine_exists_asks(docker_engine: str, short_dir: Path) -> None:
    gone = f"unix://{short_dir}/gone.sock"
    _add_context(short_dir, "rt-gone", gone)
    proc = subprocess.run(
        [h.RTBUILD, "exists", "busybox:latest", "--no-pull"],
        env=_cli_env(short_dir, DOCKER_CONTEXT="rt-gone"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Before the fix: exit 0, busybox found on the default socket the context does not name.
    assert proc.returncode == 3, proc.stderr
    assert gone in proc.stderr
    assert "docker context 'rt-gone'" in proc.stderr


def test_current_context_is_the_engine_a_no_op_build_asks(images: h.Images, context: Path, short_dir: Path) -> None:
    tag = images.tag()
    built = h.cli_build(str(context), "-t", tag, "--json", env=_cli_env(short_dir))
    assert built.returncode == 0, built.stderr  # on the default engine: no context yet
    gone = f"unix://{short_dir}/gone.sock"
    _add_context(short_dir, "rt-gone", gone)
    (short_dir / "config.json").write_text(json.dumps({"currentContext": "rt-gone"}))  # `docker context use`
    proc = h.cli_build(str(context), "-t", tag, "--json", env=_cli_env(short_dir))
    # Before the fix: the no-op skip asked the default socket and said "cached".
    assert proc.returncode == 1, proc.stdout
    error = json.loads(proc.stdout)
    assert error["error"] == "EngineUnavailableError"
    assert gone in error["message"]
    assert "currentContext" in error["message"]


def test_the_cli_builds_on_the_engine_rtbuild_resolved(
    images: h.Images, context: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A context naming the real engine under another path, and a docker CLI that records
    # the DOCKER_HOST it was given.
    alias = short_dir / "alias.sock"
    alias.symlink_to("/var/run/docker.sock")
    _add_context(short_dir, "rt-alias", f"unix://{alias}")
    seen = short_dir / "seen-hosts"
    wrapper = short_dir / "docker"
    wrapper.write_text(f'#!/bin/sh\necho "DOCKER_HOST=$DOCKER_HOST" >> {seen}\nexec {images.cli} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("DOCKER_CONFIG", str(short_dir))
    monkeypatch.setenv("DOCKER_CONTEXT", "rt-alias")
    builder = DockerBuilder(docker_cli=str(wrapper), skip_unchanged=False)
    assert builder.build(str(context), [images.tag()]) == images.tag()
    assert f"DOCKER_HOST=unix://{alias}" in seen.read_text().splitlines()
    assert f"DOCKER_HOST=unix://{alias}" in builder.plan(BuildRequest(path=str(context), tags=[images.tag()]))


def test_the_cli_drops_tls_variables_a_plain_context_does_not_use(
    context: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI reads TLS from its context, not from these; given DOCKER_HOST it would
    # read them and speak TLS to a plain engine.
    _add_context(short_dir, "rt-plain", "tcp://127.0.0.1:2375")
    monkeypatch.setenv("DOCKER_CONFIG", str(short_dir))
    monkeypatch.setenv("DOCKER_CONTEXT", "rt-plain")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(short_dir / "certs"))
    plan = DockerBuilder().plan(BuildRequest(path=str(context), tags=["rt-test/plan:1"]))
    assert "DOCKER_HOST=tcp://127.0.0.1:2375 DOCKER_TLS_VERIFY='' DOCKER_CERT_PATH='' " in plan


def test_a_context_with_tls_files_gives_the_cli_its_tls(
    context: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: a ConfigError, "connects with TLS, which rtbuild reads from the environment only".
    _add_context(short_dir, "rt-tls", "tcp://127.0.0.1:2376")
    tls = short_dir / "contexts" / "tls" / hashlib.sha256(b"rt-tls").hexdigest() / "docker"
    tls.mkdir(parents=True)
    (tls / "ca.pem").write_text("not parsed before the engine is asked\n")
    monkeypatch.setenv("DOCKER_CONFIG", str(short_dir))
    monkeypatch.setenv("DOCKER_CONTEXT", "rt-tls")
    plan = DockerBuilder().plan(BuildRequest(path=str(context), tags=["rt-test/plan:1"]))
    assert f"DOCKER_HOST=tcp://127.0.0.1:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={tls} " in plan


def test_an_unknown_context_is_a_configuration_error(
    docker_engine: str, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(short_dir))
    monkeypatch.setenv("DOCKER_CONTEXT", "rt-never-created")
    with pytest.raises(ConfigError) as info:  # before the fix: True, from the default socket
        DockerBuilder().image_exists("busybox:latest", pull_from_repo=False)
    assert "docker context 'rt-never-created' (DOCKER_CONTEXT) does not exist" in info.value.message
    assert info.value.exit_code == 2
