"""CLI and configuration rough edges: ``--config`` after the command, ``~`` in paths given
quoted, TOML duplicate keys named, and a builder whose import fails listed and offered
the same way everywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from rtbuild import load_config, plugin_settings, setting
from rtbuild.errors import BuilderNotFoundError, ConfigError
from rtbuild.testing import FakeSite, run_cli

BROKEN_BUILDER = "import no_such_module_for_rtbuild_qa  # noqa\n"


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    """Two builders, ``fake`` and ``other``; nothing selects one but the configuration file."""
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add_builder("rtbuild-other", "other")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


# --- 1. --config after the command ---------------------------------------------------------


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_config_is_accepted_after_the_command(site: FakeSite, context: Path, tmp_path: Path, form: str) -> None:
    config = tmp_path / "site.toml"
    config.write_text('builder = "other"\n')
    option = ["--config", str(config)] if form == "separate" else [f"--config={config}"]
    result = run_cli(["build", str(context), "-t", "app:1", *option, "--json"])
    assert result.exit_code == 0, result.stderr  # was 2: "No such option '--config'"
    assert result.json()["builder"] == "other"


def test_config_after_the_command_wins_over_one_before(site: FakeSite, tmp_path: Path) -> None:
    before, after = tmp_path / "before.toml", tmp_path / "after.toml"
    before.write_text('builder = "fake"\n')
    after.write_text('builder = "other"\n')
    result = run_cli(["--config", str(before), "builders", "--json", "--config", str(after)])
    assert result.exit_code == 0, result.stderr
    assert [row["name"] for row in result.json() if row["selected"]] == ["other"]
    alone = run_cli(["--config", str(before), "builders", "--json"])  # the one before still works alone
    assert [row["name"] for row in alone.json() if row["selected"]] == ["fake"]


# --- 2. ~ in paths that reached rtbuild as written -------------------------------------------


def test_config_paths_starting_with_tilde_are_the_home(site: FakeSite, home: Path, context: Path) -> None:
    (home / "rt.toml").write_text('builder = "other"\n')
    config = load_config(env={"RTBUILD_CONFIG": "~/rt.toml"})
    assert (config.builder, config.source) == ("other", str(home / "rt.toml"))  # was "does not exist"
    assert load_config("~/rt.toml", env={}).builder == "other"
    for argv, env in (
        (["--config", "~/rt.toml"], {}),
        (["--config=~/rt.toml"], {}),
        ([], {"RTBUILD_CONFIG": "~/rt.toml"}),
    ):
        result = run_cli([*argv, "build", str(context), "-t", "app:1", "--json"], env=env)
        assert result.exit_code == 0, (argv, env, result.stderr)
        assert result.json()["builder"] == "other"


@dataclass(frozen=True)
class _Paths:
    out: str = setting("", env="RTBUILD_QA_OUT", path=True)
    name: str = setting("", env="RTBUILD_QA_NAME")  # not a path: kept as written


def test_a_path_setting_from_the_environment_expands_tilde(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTBUILD_QA_OUT", "~/out.jsonl")
    monkeypatch.setenv("RTBUILD_QA_NAME", "~/kept")
    table = plugin_settings(_Paths, load_config(env={}), "qa")
    assert table.out == str(home / "out.jsonl")  # was '~/out.jsonl': a directory named '~' in the cwd
    assert table.name == "~/kept"
    monkeypatch.setenv("RTBUILD_QA_OUT", "rel/out.jsonl")  # relative: to the current directory, as before
    assert plugin_settings(_Paths, load_config(env={}), "qa").out == "rel/out.jsonl"


def test_xdg_directories_starting_with_tilde_are_the_home(home: Path) -> None:
    from rtbuild._framework.paths import cache_dir, state_dir

    env = {"XDG_CACHE_HOME": "~/c", "XDG_STATE_HOME": "~/s"}
    assert cache_dir("locks", env=env) == home / "c" / "rtbuild" / "locks"  # was ~/c/rtbuild/locks, relative
    assert state_dir("logs", env=env) == home / "s" / "rtbuild" / "logs"
    assert cache_dir(env={}) == home / ".cache" / "rtbuild"


# --- 3. a TOML key written twice ------------------------------------------------------------


def test_a_duplicate_key_names_the_file_line_and_key(site: FakeSite, tmp_path: Path) -> None:
    config = tmp_path / "rtbuild.toml"
    config.write_text('builder = "fake"\n\n[builders.fake]\nx = "1"\nx = "2"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={})
    # was: "malformed TOML: Cannot overwrite a value (at line 5, column 8)"
    assert f"{config}:5: malformed TOML: key 'builders.fake.x' is set twice (first at line 4)" in caught.value.message
    config.write_text('[sandbox]\nbase_container_image = "a"\n[sandbox]\n')
    result = run_cli(["--config", str(config), "builders"])
    assert result.exit_code == 2
    assert f"{config}:3: malformed TOML: table [sandbox] is declared twice (first at line 1)" in result.stderr


def test_a_duplicate_key_in_a_build_many_file_is_named(site: FakeSite, context: Path, tmp_path: Path) -> None:
    batch = tmp_path / "images.toml"
    batch.write_text(f'[[build]]\npath = "{context}"\ntags = ["a:1"]\ntags = ["a:2"]\n')
    result = run_cli(["build-many", str(batch)])
    assert result.exit_code == 2
    assert f"{batch}:4: malformed TOML: key 'build.tags' is set twice (first at line 3)" in result.stderr


# --- 4. a builder whose import fails ---------------------------------------------------------


def test_a_builder_that_fails_to_import_is_failed_where_it_is_imported(site: FakeSite) -> None:
    # `rtbuild plugins` lists builders without importing them (its speed, docs/index.md):
    # `rtbuild builders` is the listing that imports each class and says which fail.
    site.add_builder("rtbuild-broken", "broken", source=BROKEN_BUILDER)
    builders = {row["name"]: row for row in run_cli(["builders", "--json"]).json()}
    assert builders["broken"]["status"] == "failed" and builders["fake"]["status"] == "available"
    assert "no_such_module_for_rtbuild_qa" in builders["broken"]["error"]
    plugins = {row["name"]: row for row in run_cli(["plugins", "--json"]).json()}
    assert plugins["broken"]["status"] == "available"  # found, not imported


def test_a_builder_that_fails_to_import_is_not_offered_as_a_choice(site: FakeSite, context: Path) -> None:
    site.add_builder("rtbuild-broken", "broken", source=BROKEN_BUILDER)
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "brokn", "--json"])
    assert result.exit_code == 2
    message = result.json()["message"]
    # was: "builder 'brokn' not recognised (did you mean 'broken'?), choose one of: broken, fake, other"
    assert "choose one of: fake, other; installed but failed to import: broken (ModuleNotFoundError:" in message
    assert "did you mean" not in message
    warning = run_cli(["builders"], env={"RTBUILD_BUILDER": "nosuch"}).stderr
    assert "choose one of: fake, other; installed but failed to import: broken (" in warning


def test_builder_not_found_error_keeps_failed_apart() -> None:
    error = BuilderNotFoundError("x", ["a", "b"], failed={"b": "ImportError: gone"})
    assert (error.available, error.failed) == (["a"], {"b": "ImportError: gone"})
    only_failed = BuilderNotFoundError("x", ["b"], failed={"b": "ImportError: gone"})
    assert "choose one of: (none that imports); installed but failed to import: b (ImportError: gone)" in str(
        only_failed.message
    )
    assert json.dumps(BuilderNotFoundError("x", []).message).count("(none installed)") == 1
