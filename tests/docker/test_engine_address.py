"""An engine address no docker client takes (DOCKER_HOST=bogus://h, tcp:/h:2375, a bare
socket path) said 'cannot reach the Docker engine' with the hint to start the daemon, and
``rtbuild exists`` exit 3 (could not tell). It is a configuration error (exit 2) naming
the address and where it was set."""

from __future__ import annotations

import os

import pytest
from rtbuild import ConfigError
from rtbuild.testing import run_cli
from rtbuild_docker.engine import engine_target


@pytest.mark.parametrize("host", ["bogus://h", "tcp:/h:2375", "/var/run/docker.sock", "unix://", "tcp//h:2375"])
def test_a_malformed_docker_host_is_a_configuration_error(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(ConfigError) as raised:
        engine_target(None)
    assert str(raised.value) == f"the engine address {host!r} (set by DOCKER_HOST) is not one a docker client takes"
    assert raised.value.hint is not None and "tcp://HOST:PORT" in raised.value.hint


def test_the_configured_docker_host_is_checked_and_its_password_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(ConfigError) as raised:
        engine_target("tpc://user:s3cret@10.0.0.1:2376")
    assert "[builders.docker] docker_host" in str(raised.value) and "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    "host", ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "ssh://me@build-host", "https://10.0.0.1:2376"]
)
def test_engine_addresses_pass(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    assert engine_target(None).host == host


def test_exists_exits_2_not_3(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(
        ["--config", os.devnull, "exists", "img:1", "--no-pull", "--json"],
        env={"DOCKER_HOST": "bogus://h", "RTBUILD_BUILDER": None, "RTBUILD_CONFIG": None},
    )
    assert result.exit_code == 2, result.stderr
    assert '"ConfigError"' in result.stdout and "start the daemon" not in result.stderr
