"""rtbuild run from a directory that was removed after the shell entered it (rm -rf and
mkdir again, a CI checkout made again) said 'error: internal error: FileNotFoundError'
for every command, even ``exists``: the search for the nearest rtbuild.toml starts there.
It is a configuration error saying so; with --config nothing is searched for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rtbuild import load_config
from rtbuild.errors import ConfigError
from rtbuild.testing import FakeSite, run_cli


@pytest.fixture
def removed_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    monkeypatch.setenv("PWD", str(gone))
    gone.rmdir()
    return gone


def test_the_search_says_the_directory_is_gone(removed_cwd: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(env={})
    assert (
        str(raised.value)
        == f"the current directory {removed_cwd} no longer exists: no rtbuild.toml can be looked for from it"
    )
    assert raised.value.hint is not None and "--config" in raised.value.hint


def test_cli_exits_2_without_an_internal_error(rtbuild_site: FakeSite, removed_cwd: Path) -> None:
    result = run_cli(["plugins"], env={"RTBUILD_CONFIG": None})
    assert result.exit_code == 2, result.stderr
    assert "no longer exists" in result.stderr and "internal error" not in result.stderr
    assert result.stdout == ""


def test_an_explicit_configuration_needs_no_search(rtbuild_site: FakeSite, removed_cwd: Path) -> None:
    assert load_config(os.devnull, env={}).builder == "docker"
    assert run_cli(["--config", os.devnull, "plugins"], env={"RTBUILD_CONFIG": None}).exit_code == 0
