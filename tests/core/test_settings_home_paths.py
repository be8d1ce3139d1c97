"""A path setting from the file that starts with ``~`` is under the user's home, as
docs/configuration.md says. ``_beside`` left it as written, and a backend that did not
expand it itself (the Docker builder's ``log_dir = "~/logs"``) wrote its logs to a
directory named '~' in the current directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rtbuild import load_config, load_settings, setting
from rtbuild_docker.builder import DockerBuilder


@dataclasses.dataclass(frozen=True)
class _PathSettings:
    where: str | None = setting(None, path=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_home_path_in_the_file_is_expanded(tmp_path: Path, home: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "rtbuild.toml"
    path.write_text('[plugins.acme]\nwhere = "~/logs"\n[builders.docker]\nlog_dir = "~/docker-logs"\n')
    config = load_config(path, env={})
    settings = load_settings(_PathSettings, config.plugin_config("acme"), section="plugins.acme", config=config)
    assert settings.where == str(home / "logs")
    assert DockerBuilder.from_config(config).log_dir == str(home / "docker-logs")


def test_relative_and_absolute_paths_keep_their_meaning(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "rtbuild.toml"
    path.write_text('[builders.docker]\nlog_dir = "logs"\n')
    assert DockerBuilder.from_config(load_config(path, env={})).log_dir == str(tmp_path / "logs")
    path.write_text('[builders.docker]\nlog_dir = "/var/tmp/x~y"\n')
    assert DockerBuilder.from_config(load_config(path, env={})).log_dir == "/var/tmp/x~y"
