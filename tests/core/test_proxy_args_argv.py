"""A proxy-named build arg holding a URL with a password never reaches the engine client's
command line (readable by every local user: ``ps``, ``/proc/PID/cmdline``). It stayed there
whenever rtbuild's own environment held another value for that name (or none): in the
client's environment it would also set the client's own proxy. A client that makes no
proxied connection of its own (``proxies_in_env``: the docker CLI over a unix socket) gets
it in its environment; for any other the build is refused, naming the arg, never its value."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.enginekit import run_build
from rtbuild.errors import ConfigError

PASSWORD = "pw-Kx7-never-on-argv"
PROXY = f"http://user:{PASSWORD}@proxy.example:3128"


def _engine(tmp_path: Path, *build_args: str) -> list[str]:
    """A stand-in engine printing its command line as other users see it, then its proxy
    variables (run_build adds ``--iidfile FILE`` before the last argument, the context)."""
    script = (
        f"touch {tmp_path}/ran; tr '\\0' ' ' < /proc/$$/cmdline; echo;"
        ' echo "env: ${HTTPS_PROXY-unset}|${http_proxy-unset}"'
    )
    argv = ["sh", "-c", script, "engine"]
    for arg in build_args:
        argv += ["--build-arg", arg]
    return [*argv, "context"]


@pytest.fixture(autouse=True)
def _other_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://host-proxy.example:8080")  # rtbuild's own, another value
    monkeypatch.delenv("http_proxy", raising=False)


def test_a_client_without_proxied_connections_takes_it_in_its_environment(tmp_path: Path) -> None:
    lower = f"http://u:{PASSWORD}-2@proxy.example:3128"
    argv = _engine(tmp_path, f"HTTPS_PROXY={PROXY}", f"http_proxy={lower}", "NO_PROXY=localhost")
    result = run_build(argv, env={}, log_path=str(tmp_path / "log"), stream=False, proxies_in_env=True)
    assert result.returncode == 0, result.lines
    cmdline, environment = result.lines
    assert PASSWORD not in cmdline
    assert "--build-arg HTTPS_PROXY --build-arg http_proxy --build-arg NO_PROXY=localhost" in cmdline
    assert environment == f"env: {PROXY}|{lower}"  # the build arg's value, not rtbuild's own
    assert PASSWORD not in (tmp_path / "log").read_text().splitlines()[0]  # the logged command line is masked


def test_any_other_client_is_refused_naming_the_arg_never_its_value(tmp_path: Path) -> None:
    argv = _engine(tmp_path, f"HTTPS_PROXY={PROXY}", "GREETING=hi")
    with pytest.raises(ConfigError) as info:
        run_build(argv, env={}, log_path=None, stream=False)
    error = info.value
    assert "HTTPS_PROXY" in error.message and error.step == "start engine"
    assert error.hint and "same URL" in error.hint
    assert PASSWORD not in str(error.to_dict())
    assert not (tmp_path / "ran").exists(), "the engine ran with the password on its command line"


def test_a_value_the_environment_already_holds_travels_there_for_any_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    result = run_build(_engine(tmp_path, f"HTTPS_PROXY={PROXY}"), env={}, log_path=None, stream=False)
    cmdline, environment = result.lines
    assert PASSWORD not in cmdline and environment == f"env: {PROXY}|unset"


def test_a_proxy_without_a_password_stays_as_it_was(tmp_path: Path) -> None:
    plain = "http://proxy.example:3128"
    result = run_build(_engine(tmp_path, f"HTTPS_PROXY={plain}"), env={}, log_path=None, stream=False)
    cmdline, environment = result.lines
    assert f"--build-arg HTTPS_PROXY={plain}" in cmdline
    assert environment == "env: http://host-proxy.example:8080|unset"
