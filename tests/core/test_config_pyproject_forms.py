"""``[tool.rtbuild]`` in pyproject.toml is found however TOML spells the table.

Only a ``[tool.rtbuild]`` / ``[tool.rtbuild.X]`` header was looked for: the same table
written as ``rtbuild = {...}`` or ``rtbuild.KEY = ...`` under ``[tool]`` (or dotted keys at
the top) was passed over, and the build ran with defaults without a word."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild import load_config
from rtbuild._framework.config import find_config_file
from rtbuild.errors import ConfigError

FORMS = {
    "inline table": '[tool]\nrtbuild = { builder = "podman", push = true }\n',
    "dotted keys under [tool]": '[tool]\nrtbuild.builder = "podman"\nrtbuild.push = true\n',
    "dotted keys at the top": 'tool.rtbuild.builder = "podman"\ntool.rtbuild.push = true\n',
}


@pytest.mark.parametrize("text", FORMS.values(), ids=FORMS.keys())
def test_every_spelling_of_the_table_is_found(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n' * ("[tool]" in text) + text)
    sub = tmp_path / "src" / "app"
    sub.mkdir(parents=True)
    assert find_config_file(sub) == tmp_path / "pyproject.toml"
    config = load_config(env={}, search_from=sub)
    assert config.builder == "podman" and config.push is True


def test_a_mistake_in_the_inline_table_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool]\nrtbuild = { buidler = "podman" }\n')
    with pytest.raises(ConfigError) as raised:
        load_config(env={}, search_from=tmp_path)
    assert "unknown key 'tool.rtbuild.buidler'" in str(raised.value)


@pytest.mark.parametrize(
    "text",
    [
        '[project]\nname = "app"\ndependencies = ["rtbuild>=0.1", "rtbuild-docker"]\n',
        '[tool.other]\nrtbuild = "mentioned"\n',
        "[tool]\nrtbuild = [ broken\n",  # not TOML: not a configuration either, as before
    ],
    ids=["dependency", "another tool's key", "malformed"],
)
def test_a_pyproject_without_the_table_is_still_passed_over(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert find_config_file(tmp_path) is None


@pytest.mark.parametrize(("text", "header"), [("[tool.rtbuild]\n", "[tool.rtbuild]"), ("[rtbuild]\n", "[rtbuild]")])
def test_a_pyproject_header_in_rtbuild_toml_says_to_drop_it(tmp_path: Path, text: str, header: str) -> None:
    """The hint was 'did you mean builder?' for [rtbuild], the docs' pointer for [tool.rtbuild]."""
    (tmp_path / "rtbuild.toml").write_text(text + 'builder = "docker"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(env={}, search_from=tmp_path)
    assert raised.value.hint == f"in rtbuild.toml the keys stand at the top: drop the {header} header"


QUOTED = {
    "spaced, quoted header": '[ tool . "rtbuild" ]\nbuilder = "podman"\npush = true\n',
    "quoted dotted keys": '"tool"."rtbuild".builder = "podman"\ntool.\'rtbuild\'.push = true\n',
    "inline table at the top": 'tool = { rtbuild = { builder = "podman", push = true } }\n',
    "quoted key under [tool]": '[tool]\n"rtbuild" = { builder = "podman", push = true }\n',
}


@pytest.mark.parametrize("text", QUOTED.values(), ids=QUOTED.keys())
def test_quoted_and_spaced_spellings_are_found(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert find_config_file(tmp_path) == tmp_path / "pyproject.toml"
    config = load_config(env={}, search_from=tmp_path)
    assert config.builder == "podman" and config.push is True


def test_a_mention_in_another_tools_settings_is_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project that names rtbuild's API in ruff's settings (as rtbuild's own pyproject does)
    paid a TOML parse on every CLI call run in it: only a key that can open the table is."""
    import tomllib

    parsed: list[str] = []
    real = tomllib.loads
    monkeypatch.setattr(tomllib, "loads", lambda text, **kw: parsed.append(text) or real(text, **kw))
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\ndependencies = ["rtbuild>=0.1"]\n\n'
        "[tool.ruff.lint.flake8-bugbear]\n# rtbuild.setting() returns a field\n"
        'extend-immutable-calls = ["rtbuild.setting", "rtbuild._framework.config.setting"]\n'
        'extra = [\n    "rtbuild.setting",\n]\n'
    )
    assert find_config_file(tmp_path) is None
    assert parsed == []
