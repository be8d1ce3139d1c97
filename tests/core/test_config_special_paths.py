"""--config / RTBUILD_CONFIG naming what is not a regular file.

/dev/null (the Unix way to say "no configuration file", as GIT_CONFIG_GLOBAL=/dev/null)
and a pipe (``--config <(generate)``) were both reported as a file that 'does not exist'.
/dev/null now means no file at all (not even the nearest rtbuild.toml); a pipe or device
is refused for what it is: its text would be read more than once (line numbers of errors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rtbuild import load_config
from rtbuild.errors import ConfigError
from rtbuild.testing import FakeSite, run_cli


@pytest.fixture
def broken_nearest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rtbuild.toml").write_text('builder = "from-the-file"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dev_null_is_no_configuration_file(broken_nearest: Path) -> None:
    assert load_config(env={}).builder == "from-the-file"  # found without the override
    for config in (load_config(os.devnull, env={}), load_config(env={"RTBUILD_CONFIG": os.devnull})):
        assert config.builder == "docker" and config.source is None


def test_a_pipe_is_refused_for_what_it_is(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as raised:
        load_config(fifo, env={})
    assert str(raised.value) == f"configuration file {fifo} is not a regular file (a pipe or a device)"
    assert raised.value.hint is not None and os.devnull in raised.value.hint


def test_a_missing_file_still_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_cli_with_config_dev_null_ignores_the_nearest_file(rtbuild_site: FakeSite, broken_nearest: Path) -> None:
    rtbuild_site.add_builder("rtbuild-docker", "docker", module="special_paths_site_builder")

    def selected(*args: str) -> list[str]:
        result = run_cli([*args, "builders", "--json"], env={"RTBUILD_CONFIG": None, "RTBUILD_BUILDER": None})
        assert result.exit_code == 0, result.stderr
        return [row["name"] for row in json.loads(result.stdout) if row["selected"]]

    assert selected() == []  # the nearest file selects 'from-the-file', not installed
    assert selected("--config", os.devnull) == ["docker"]
