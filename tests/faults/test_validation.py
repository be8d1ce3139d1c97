"""Bad input is a one-line error, exit 2, before any work (no engine contact needed: the
checks run before a builder is even created), and --json always prints one object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rtbuild.testing import run_cli

BAD_TAGS = ["Bad:1", "a b", "a" * 300, "a..b", "ünï:1", "", "x:tag with space", "x:" + "t" * 200]


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox:latest\n")
    return tmp_path / "ctx"


def _unreachable_engine(tmp_path: Path) -> dict[str, str | None]:
    # A Docker engine that does not exist: reaching it would fail differently (exit 1).
    return {"DOCKER_HOST": f"unix://{tmp_path}/none.sock", "XDG_CACHE_HOME": str(tmp_path / "c")}


@pytest.mark.parametrize("tag", BAD_TAGS, ids=lambda t: repr(t[:12]))
def test_invalid_tags(ctx: Path, tmp_path: Path, tag: str) -> None:
    result = run_cli(["build", str(ctx), "-t", tag, "--json"], env=_unreachable_engine(tmp_path))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: invalid image reference"), result.stderr
    assert "engine" not in result.stderr.splitlines()[0]
    assert json.loads(result.stdout)["error"] == "InvalidReferenceError"


@pytest.mark.parametrize("platform", ["bogus", "linux/", "linux/amd64/v2/x", "linux amd64", "linux/amd64,"])
def test_invalid_platforms(ctx: Path, tmp_path: Path, platform: str) -> None:
    result = run_cli(["build", str(ctx), "-t", "ok:1", "--platform", platform], env=_unreachable_engine(tmp_path))
    assert result.exit_code == 2, result.stderr
    assert "platform" in result.stderr.splitlines()[0]


def test_non_utf8_config_file(ctx: Path, tmp_path: Path) -> None:
    config = tmp_path / "rtbuild.toml"
    config.write_bytes(b'builder = "docker"\n# caf\xe9\n')
    result = run_cli(["--config", str(config), "build", str(ctx), "-t", "ok:1", "--json"])
    assert result.exit_code == 2, result.stderr
    assert "not UTF-8" in result.stderr.splitlines()[0]
    assert json.loads(result.stdout)["error"] == "ConfigError"


def test_non_utf8_build_many_file(ctx: Path, tmp_path: Path) -> None:
    batch = tmp_path / "many.toml"
    batch.write_bytes(b'[[build]]\npath = "' + str(ctx).encode() + b'"\ntags = ["ok:1"] # \xff\n')
    result = run_cli(["build-many", str(batch)])
    assert result.exit_code == 2, result.stderr
    assert "not UTF-8" in result.stderr.splitlines()[0]


def test_log_dir_that_is_a_file(ctx: Path, tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("")
    config = tmp_path / "rtbuild.toml"
    config.write_text(f'[builders.docker]\nlog_dir = "{tmp_path / "logs"}"\n')
    result = run_cli(["--config", str(config), "build", str(ctx), "-t", "ok:1"], env=_unreachable_engine(tmp_path))
    assert result.exit_code == 2, result.stderr
    assert "not a directory" in result.stderr


def test_usage_errors_print_one_json_object(ctx: Path) -> None:
    result = run_cli(["build", str(ctx), "--json"])  # no -t
    assert result.exit_code == 2
    assert json.loads(result.stdout)["exit_code"] == 2
