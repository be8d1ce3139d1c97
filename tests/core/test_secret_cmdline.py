"""Build-arg values rtbuild masks never reach the engine client's command line, which every
local user can read (``/proc/PID/cmdline``, ``ps``): they travel in its environment
(readable by its owner only), and docker, buildx and podman take ``--build-arg NAME``
from there."""

from __future__ import annotations

from pathlib import Path

from rtbuild.enginekit import run_build
from rtbuild.enginekit._redact import build_args_via_env

TOKEN = "tok-Zq9-never-on-argv"
URL = "https://__token__:pw-Zq9-never-on-argv@pypi.example/simple"


def _engine() -> list[str]:
    """A stand-in engine printing its own command line as the kernel shows it to other users,
    then the build args' values as its environment holds them (run_build adds ``--iidfile``
    before the last argument, the context)."""
    script = 'tr "\\0" " " < /proc/$$/cmdline; echo; echo "env: $API_TOKEN|$PIP_INDEX_URL|${GREETING-unset}"'
    argv = ["sh", "-c", script, "engine"]
    argv += ["--build-arg", f"API_TOKEN={TOKEN}", f"--build-arg=PIP_INDEX_URL={URL}", "--build-arg", "GREETING=hi"]
    return [*argv, "context"]


def test_masked_build_arg_values_are_in_the_environment_not_the_command_line(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    result = run_build(_engine(), env={}, log_path=str(log), stream=False, shown_argv=None)
    assert result.returncode == 0, result.lines
    cmdline, environment = result.lines
    assert TOKEN not in cmdline and "pw-Zq9" not in cmdline
    assert "--build-arg API_TOKEN --build-arg=PIP_INDEX_URL --build-arg GREETING=hi" in cmdline
    assert environment == f"env: {TOKEN}|{URL}|unset"  # the engine gets the values all the same
    assert (
        log.read_text()
        .splitlines()[0]
        .endswith(
            "--build-arg API_TOKEN=*** --build-arg=PIP_INDEX_URL=https://__token__:***@pypi.example/simple"
            " --build-arg GREETING=hi context"
        )
    )  # the log's command line as the engine was asked, masked, even without shown_argv


def test_the_last_value_wins_and_a_valueless_build_arg_keeps_its_meaning() -> None:
    argv = ["docker", "build", "--build-arg", "A_TOKEN=one", "--build-arg=A_TOKEN=two", "--build-arg", "X=1", "ctx"]
    out, env = build_args_via_env(argv, {})
    assert out == ["docker", "build", "--build-arg", "A_TOKEN", "--build-arg=A_TOKEN", "--build-arg", "X=1", "ctx"]
    assert env == {"A_TOKEN": "two"}  # as the engines read a repeated build arg
    # `--build-arg B_TOKEN` alone takes the caller's environment: moving B_TOKEN=v there would change it.
    argv = ["docker", "build", "--build-arg", "B_TOKEN=v", "--build-arg", "B_TOKEN", "ctx"]
    assert build_args_via_env(argv, {"B_TOKEN": "from-env"}) == (argv, {})


def test_names_the_client_reads_itself_stay_unless_the_environment_agrees() -> None:
    proxy = "http://user:pw-proxy@proxy.example:3128"
    argv = ["podman", "build", "--build-arg", f"HTTPS_PROXY={proxy}", "--build-arg", "DOCKER_TOKEN=t0ken", "ctx"]
    # In podman's or docker's environment these would change how they reach registries.
    assert build_args_via_env(argv, {}) == (argv, {})
    out, env = build_args_via_env(argv, {"HTTPS_PROXY": proxy})
    assert out == ["podman", "build", "--build-arg", "HTTPS_PROXY", "--build-arg", "DOCKER_TOKEN=t0ken", "ctx"]
    assert env == {"HTTPS_PROXY": proxy}
