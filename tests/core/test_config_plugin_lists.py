"""``load_plugins`` / ``disable_plugins``: one plugin name per item. 'metrics sbom' (a
space where the docs say a comma) matched no plugin, so ``RTBUILD_DISABLE_PLUGINS='metrics
sbom'`` disabled nothing, with only a warning about an unknown name."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild._framework.config import load_config
from rtbuild.errors import ConfigError
from rtbuild.testing import run_cli


@pytest.mark.parametrize("variable", ["RTBUILD_DISABLE_PLUGINS", "RTBUILD_LOAD_PLUGINS"])
def test_names_separated_by_blanks_in_the_environment_are_refused(variable: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(env={variable: "metrics sbom"}, search_from=tmp_path)
    assert variable in raised.value.message and "'metrics sbom'" in raised.value.message
    assert f"{variable}=metrics,sbom" in (raised.value.hint or "")


def test_names_separated_by_blanks_in_the_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rtbuild.toml"
    path.write_text('builder = "docker"\ndisable_plugins = ["metrics\\tsbom"]\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert f"{path}:2" in raised.value.message
    assert 'disable_plugins = ["metrics", "sbom"]' in (raised.value.hint or "")


def test_comma_lists_and_blanks_around_names_still_work(tmp_path: Path) -> None:
    config = load_config(env={"RTBUILD_DISABLE_PLUGINS": " metrics , sbom "}, search_from=tmp_path)
    assert config.disable_plugins == ["metrics", "sbom"]
    path = tmp_path / "rtbuild.toml"
    path.write_text('load_plugins = ["jupyter", "vscode"]\n')
    assert load_config(path, env={}).load_plugins == ["jupyter", "vscode"]


def test_the_cli_exits_2_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTBUILD_DISABLE_PLUGINS", "metrics sbom")
    result = run_cli(["plugins"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "holds several names" in result.stderr
