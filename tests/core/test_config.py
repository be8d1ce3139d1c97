"""Configuration: files, environment, flags, precedence and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild import BuildRequest, Config, load_config, run_build
from rtbuild._framework.config import ENV_VARS, find_config_file
from rtbuild.errors import ConfigError
from rtbuild.testing import FakeSite, run_cli

FULL = """\
builder = "filebuilder"
platform = "linux/arm64"
push = true
load_plugins = ["a", "b"]
disable_plugins = ["c"]
strict_plugins = true
trace_hooks = false

[build_args]
PYTHON = "3.12"
RETRIES = 3
VERBOSE = true

[labels]
"org.opencontainers.image.source" = "https://example.invalid/repo"

[builders.docker]
host = "unix:///run/docker.sock"

[plugins.jupyter]
version = "7"

[sandbox]
runtime_container_image = "rt:1"
base_container_image = "python:3.12-slim"
build_args = { EXTRA = "1" }

[runtime]
repo = "127.0.0.1:5000/runtime"
plugins = ["jupyter"]
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*ENV_VARS, "RTBUILD_CONFIG"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_without_any_file(tmp_path: Path) -> None:
    config = load_config(env={}, search_from=tmp_path)
    assert config.builder == "docker"
    assert config.platform is None and config.push is False
    assert config.load_plugins is None and config.disable_plugins == []
    assert config.source is None


def test_every_key_of_rtbuild_toml(tmp_path: Path) -> None:
    (tmp_path / "rtbuild.toml").write_text(FULL)
    config = load_config(env={})
    assert config.source == str(tmp_path / "rtbuild.toml")
    assert config.builder == "filebuilder" and config.platform == "linux/arm64" and config.push is True
    assert config.load_plugins == ["a", "b"] and config.disable_plugins == ["c"] and config.strict_plugins
    assert config.build_args == {"PYTHON": "3.12", "RETRIES": "3", "VERBOSE": "true"}  # not Python's "True"
    assert config.labels == {"org.opencontainers.image.source": "https://example.invalid/repo"}
    assert config.builder_config("docker") == {"host": "unix:///run/docker.sock"}
    assert config.builder_config("absent") == {}
    assert config.plugin_config("jupyter") == {"version": "7"}
    assert config.sandbox.runtime_container_image == "rt:1"
    assert config.sandbox.base_container_image == "python:3.12-slim"
    assert config.sandbox.build_args == {"EXTRA": "1"}
    assert config.runtime.repo == "127.0.0.1:5000/runtime" and config.runtime.plugins == ["jupyter"]


def test_tool_rtbuild_in_pyproject_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.rtbuild]\nbuilder = "podman"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert find_config_file(sub) == tmp_path / "pyproject.toml"
    assert load_config(env={}, search_from=sub).builder == "podman"


def test_pyproject_without_tool_rtbuild_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config_file(tmp_path) is None


def test_rtbuild_toml_wins_over_pyproject_in_the_same_directory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.rtbuild]\nbuilder = "podman"\n')
    (tmp_path / "rtbuild.toml").write_text('builder = "kubernetes"\n')
    assert load_config(env={}).builder == "kubernetes"


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    (tmp_path / "rtbuild.toml").write_text('builder = "from-file"\nplatform = "linux/arm64"\npush = true\n')
    config = load_config(env={})
    assert (config.builder, config.platform, config.push) == ("from-file", "linux/arm64", True)
    env = {"RTBUILD_BUILDER": "from-env", "RTBUILD_PUSH": "0"}
    config = load_config(env=env)
    assert (config.builder, config.platform, config.push) == ("from-env", "linux/arm64", False)
    config = load_config(env=env, overrides={"builder": "from-flag", "platform": None, "push": True})
    assert (config.builder, config.platform, config.push) == ("from-flag", "linux/arm64", True)


def test_every_env_var_is_applied(tmp_path: Path) -> None:
    env = {
        "RTBUILD_BUILDER": "b",
        "RTBUILD_PLATFORM": "linux/amd64",
        "RTBUILD_PUSH": "yes",
        "RTBUILD_LOAD_PLUGINS": "x, y",
        "RTBUILD_DISABLE_PLUGINS": "z",
        "RTBUILD_STRICT_PLUGINS": "1",
        "RTBUILD_TRACE_HOOKS": "true",
        "RTBUILD_RUNTIME_CONTAINER_IMAGE": "rt:2",
        "RTBUILD_BASE_CONTAINER_IMAGE": "debian:bookworm",
        "RTBUILD_RUNTIME_REPO": "127.0.0.1:5000/rt",
        "RTBUILD_INSECURE_REGISTRIES": "reg.example:5000, 10.0.0.9",
        "RTBUILD_BUILD_TIMEOUT": "1800",
    }
    config = load_config(env=env)
    assert config.builder == "b" and config.platform == "linux/amd64" and config.push is True
    assert config.load_plugins == ["x", "y"] and config.disable_plugins == ["z"]
    assert config.strict_plugins is True and config.trace_hooks is True
    assert config.sandbox.runtime_container_image == "rt:2"
    assert config.sandbox.base_container_image == "debian:bookworm"
    assert config.runtime.repo == "127.0.0.1:5000/rt"
    assert config.insecure_registries == ["reg.example:5000", "10.0.0.9"]
    assert config.build_timeout == 1800.0
    # Every documented variable is handled by load_config (new ones must be added above).
    unhandled = set(ENV_VARS) - set(env)
    assert not unhandled, f"test every env var: {sorted(unhandled)}"


def test_empty_load_plugins_means_none_and_unset_means_all() -> None:
    assert load_config(env={"RTBUILD_LOAD_PLUGINS": ""}).load_plugins == []
    assert load_config(env={}).load_plugins is None


def test_rtbuild_config_env_and_explicit_path(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('builder = "elsewhere"\n')
    (tmp_path / "rtbuild.toml").write_text('builder = "nearby"\n')
    assert load_config(env={"RTBUILD_CONFIG": str(other)}).builder == "elsewhere"
    assert load_config(other, env={}).builder == "elsewhere"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", env={})


def test_build_args_merge_sandbox_then_config_then_request(rtbuild_site: FakeSite, tmp_path: Path) -> None:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "rtbuild.toml").write_text(
        'builder = "fake"\n[build_args]\nA = "config"\nB = "config"\n'
        '[sandbox]\nbuild_args = { A = "sandbox", S = "sandbox" }\n[labels]\nL = "config"\n'
    )
    request = BuildRequest(str(ctx), tags=["t:1"], build_args={"B": "request"})
    run_build(request, config=load_config())
    assert request.build_args == {"A": "config", "S": "sandbox", "B": "request"}
    assert request.labels == {"L": "config"}


# --- errors ------------------------------------------------------------------------------


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rtbuild.toml"
    path.write_text('builder = "docker"\nplatform = \n')
    with pytest.raises(ConfigError) as info:
        load_config(env={})
    assert str(path) in info.value.message and "line 2" in info.value.message
    assert info.value.exit_code == 2 and info.value.step == "read configuration"


@pytest.mark.parametrize(
    ("filename", "text", "where", "key"),
    [
        ("rtbuild.toml", 'builder = "docker"\n\nbuiler = "x"\n', ":3:", "'builer'"),
        ("rtbuild.toml", '[sandbox]\nruntime_container_image = "a"\nbase_image = "b"\n', ":3:", "'sandbox.base_image'"),
        ("rtbuild.toml", "push = true\n[colours]\nred = 1\n", ":2:", "'colours'"),
        (
            "pyproject.toml",
            '[project]\nname = "x"\n\n[tool.rtbuild]\nbuilder = "d"\nplatfrom = "linux/amd64"\n',
            ":6:",
            "'tool.rtbuild.platfrom'",
        ),
        (
            "pyproject.toml",
            '[tool.rtbuild]\nbuilder = "d"\n\n[tool.rtbuild.runtime]\nrepos = "x"\n',
            ":5:",
            "'tool.rtbuild.runtime.repos'",
        ),
    ],
)
def test_unknown_keys_name_file_key_and_line(tmp_path: Path, filename: str, text: str, where: str, key: str) -> None:
    path = tmp_path / filename
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(env={})
    message = info.value.message
    assert message.startswith(f"{path}{where}"), message
    assert f"unknown key {key}" in message


def test_unknown_key_hint_suggests_the_close_one(tmp_path: Path) -> None:
    (tmp_path / "rtbuild.toml").write_text('builer = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(env={})
    assert info.value.hint is not None and "did you mean 'builder'?" in info.value.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("push = 'yes'\n", "expected a boolean for 'push'"),
        ("load_plugins = 'a'\n", "expected a list of strings for 'load_plugins'"),
        ("[build_args]\nA = [1]\n", "expected a table of strings for 'build_args': 'A' holds a list"),
        ('[build_args]\nA = "x\\u0000y"\n', "'build_args': the value of 'A' holds a NUL character"),
        ('[labels]\n"a\\u0000" = "y"\n', "'labels': a key holds a NUL character"),
        ('builder = "dock\\u0000er"\n', "'builder': it holds a NUL character"),
        ("lock_timeout = -5\n", "expected seconds \\(0 or more\\) for 'lock_timeout': got -5"),
        ("lock_timeout = nan\n", "expected seconds \\(0 or more\\) for 'lock_timeout': got nan"),
        ("builders = 3\n", "expected a table of tables for 'builders'"),
        ("sandbox = 3\n", "expected a table for 'sandbox'"),
    ],
)
def test_wrong_types_are_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "rtbuild.toml").write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(env={})


@pytest.mark.parametrize("text", ['tool = "x"\n', "[tool]\nrtbuild = 5\n"])
def test_a_pyproject_whose_tool_rtbuild_is_not_a_table(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    if text.startswith("tool ="):
        assert load_config(tmp_path / "pyproject.toml", env={}).builder == "docker"  # no rtbuild table at all
        return
    with pytest.raises(ConfigError, match=r"\[tool.rtbuild\] must be a table"):
        load_config(tmp_path / "pyproject.toml", env={})


def test_bad_boolean_in_the_environment() -> None:
    with pytest.raises(ConfigError, match="RTBUILD_STRICT_PLUGINS='maybe' is not a boolean"):
        load_config(env={"RTBUILD_STRICT_PLUGINS": "maybe"})


def test_cli_config_errors_exit_2_without_traceback(rtbuild_site: FakeSite, tmp_path: Path) -> None:
    (tmp_path / "rtbuild.toml").write_text('[sandbox]\nruntime_image = "x"\n')
    result = run_cli(["plugins"])
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'rtbuild.toml'}:2: unknown key 'sandbox.runtime_image'" in result.stderr
    assert "step: read configuration" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_cli_config_flag(rtbuild_site: FakeSite, tmp_path: Path) -> None:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    config = tmp_path / "custom.toml"
    config.write_text('builder = "fake"\n')
    result = run_cli(["--config", str(config), "builders", "--json"])
    assert result.exit_code == 0, result.stderr
    assert result.json()[0]["selected"] is True
    missing = run_cli(["--config", str(tmp_path / "nope.toml"), "builders"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_config_object_defaults_are_independent() -> None:
    a, b = Config(), Config()
    a.build_args["X"] = "1"
    assert b.build_args == {}
