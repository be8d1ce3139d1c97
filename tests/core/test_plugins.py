"""Plugin discovery: ordering, allow/deny before ep.load(), broken and invalid plugins, listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rtbuild import BuildRequest, Config, PluginLoadWarning, load_config, run_build
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.errors import PluginError
from rtbuild.testing import FakeSite, run_cli

# A plugin that appends its name to a shared file in pre_build and post_build.
RECORDING_PLUGIN = """
import os
from rtbuild import hookimpl

NAME = {name!r}


def _record(event):
    with open(os.environ["RTBUILD_TEST_LOG"], "a") as fh:
        fh.write(event + ":" + NAME + "\\n")


@hookimpl{marker}
def pre_build(request):
    _record("pre_build")


@hookimpl
def post_build(result):
    _record("post_build")
"""

# Importing this plugin leaves a mark and raises: if it was ever imported, we know.
EXPLODING_PLUGIN = """
import os, pathlib
pathlib.Path(os.environ["RTBUILD_TEST_MARKS"], {name!r}).write_text("imported")
raise RuntimeError("plugin {name} exploded on import")
"""


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "hooks.log"
    path.write_text("")
    monkeypatch.setenv("RTBUILD_TEST_LOG", str(path))
    return path


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    """A site with one builder, ``fake``, selected through the environment."""
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def _add(site: FakeSite, dist: str, name: str, marker: str = "") -> None:
    site.add_plugin(dist, name, RECORDING_PLUGIN.format(name=name, marker=marker))


def _events(log: Path) -> list[str]:
    return log.read_text().splitlines()


def _build(context: Path, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = run_cli(["build", str(context), "-t", "img:1"], env=env)
    return result.exit_code, result.stderr


# --- ordering ------------------------------------------------------------------------------


def test_plugins_run_last_registered_first(site: FakeSite, log: Path, context: Path) -> None:
    # Entry points register in name order; pluggy calls the last registered first (LIFO).
    for name in ("p1", "p2", "p3"):
        _add(site, f"rtbuild-{name}", name)
    code, err = _build(context)
    assert code == 0, err
    assert [e for e in _events(log) if e.startswith("pre_build")] == ["pre_build:p3", "pre_build:p2", "pre_build:p1"]


def test_tryfirst_and_trylast_override_registration_order(site: FakeSite, log: Path, context: Path) -> None:
    _add(site, "rtbuild-a", "a", marker="(tryfirst=True)")
    _add(site, "rtbuild-b", "b")
    _add(site, "rtbuild-c", "c", marker="(trylast=True)")
    code, err = _build(context)
    assert code == 0, err
    assert [e for e in _events(log) if e.startswith("pre_build")] == ["pre_build:a", "pre_build:b", "pre_build:c"]


def test_pre_and_post_build_run_once_each(site: FakeSite, log: Path, context: Path) -> None:
    _add(site, "rtbuild-once", "once")
    code, err = _build(context)
    assert code == 0, err
    assert _events(log) == ["pre_build:once", "post_build:once"]


# --- allow / deny --------------------------------------------------------------------------


def _three(site: FakeSite) -> None:
    _add(site, "rtbuild-jupyter", "jupyter")
    _add(site, "acme-rtbuild-tools", "tools")
    _add(site, "rtbuild-extra", "extra")


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        ("jupyter", {"jupyter"}),  # by entry-point name
        ("acme-rtbuild-tools", {"tools"}),  # by distribution name
        ("acme_rtbuild_tools, extra", {"tools", "extra"}),  # normalised distribution name, a list
        ("", set()),  # empty string = none
    ],
)
def test_load_plugins_allow_list(site: FakeSite, log: Path, context: Path, allow: str, expected: set[str]) -> None:
    _three(site)
    code, err = _build(context, env={"RTBUILD_LOAD_PLUGINS": allow})
    assert code == 0, err
    assert {e.split(":")[1] for e in _events(log)} == expected


def test_disable_plugins_by_entry_point_and_distribution(site: FakeSite, log: Path, context: Path) -> None:
    _three(site)
    code, err = _build(context, env={"RTBUILD_DISABLE_PLUGINS": "jupyter,acme-rtbuild-tools"})
    assert code == 0, err
    assert {e.split(":")[1] for e in _events(log)} == {"extra"}


def test_disable_wins_over_allow(site: FakeSite, log: Path, context: Path) -> None:
    _three(site)
    code, err = _build(context, env={"RTBUILD_LOAD_PLUGINS": "jupyter,extra", "RTBUILD_DISABLE_PLUGINS": "extra"})
    assert code == 0, err
    assert {e.split(":")[1] for e in _events(log)} == {"jupyter"}


def test_no_plugins_flag(site: FakeSite, log: Path, context: Path) -> None:
    _three(site)
    result = run_cli(["--no-plugins", "build", str(context), "-t", "img:1"])
    assert result.exit_code == 0, result.stderr
    assert _events(log) == []
    listing = run_cli(["--no-plugins", "plugins", "--json"]).json()
    assert {r["name"]: r["status"] for r in listing if r["distribution"] != "rtbuild" and r["kind"] == "plugin"} == {
        "jupyter": "disabled",
        "tools": "disabled",
        "extra": "disabled",
    }


@pytest.mark.parametrize(
    "env",
    [
        {"RTBUILD_DISABLE_PLUGINS": "boom"},
        {"RTBUILD_DISABLE_PLUGINS": "rtbuild-boom"},
        {"RTBUILD_LOAD_PLUGINS": "jupyter"},
        {"RTBUILD_LOAD_PLUGINS": ""},
    ],
)
def test_filtering_happens_before_the_plugin_is_imported(
    site: FakeSite, marks: Path, log: Path, context: Path, env: dict[str, str | None]
) -> None:
    _add(site, "rtbuild-jupyter", "jupyter")
    site.add_plugin("rtbuild-boom", "boom", EXPLODING_PLUGIN.format(name="boom"))
    code, err = _build(context, env={**env, "RTBUILD_STRICT_PLUGINS": "1"})
    assert code == 0, err
    assert list(marks.iterdir()) == []
    assert "exploded" not in err


def test_no_plugins_flag_never_imports(site: FakeSite, marks: Path, context: Path) -> None:
    site.add_plugin("rtbuild-boom", "boom", EXPLODING_PLUGIN.format(name="boom"))
    result = run_cli(["--no-plugins", "build", str(context), "-t", "img:1"], env={"RTBUILD_STRICT_PLUGINS": "1"})
    assert result.exit_code == 0, result.stderr
    assert list(marks.iterdir()) == []


# --- broken, strict, invalid ---------------------------------------------------------------


def test_broken_plugin_is_reported_and_skipped(site: FakeSite, marks: Path, log: Path, context: Path) -> None:
    _add(site, "rtbuild-good", "good")
    site.add_plugin("rtbuild-boom", "boom", EXPLODING_PLUGIN.format(name="boom"), version="0.9")
    result = run_cli(["build", str(context), "-t", "img:1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "img:1"
    warning = next(line for line in result.stderr.splitlines() if line.startswith("warning:"))
    assert "'boom'" in warning and "rtbuild-boom 0.9" in warning
    assert "RuntimeError: plugin boom exploded on import" in warning
    assert "Traceback" not in result.stderr
    assert _events(log) == ["pre_build:good", "post_build:good"]
    assert [p.name for p in marks.iterdir()] == ["boom"]


def test_broken_plugin_warns_through_the_api(site: FakeSite, marks: Path) -> None:
    site.add_plugin("rtbuild-boom", "boom", EXPLODING_PLUGIN.format(name="boom"))
    with pytest.warns(PluginLoadWarning, match="rtbuild-boom"):
        pm = get_plugin_manager(Config())
    record = next(r for r in pm.listing() if r.name == "boom")
    assert record.status == "failed" and record.error == "RuntimeError: plugin boom exploded on import"


def test_strict_plugins_makes_a_broken_plugin_an_error(site: FakeSite, marks: Path, context: Path) -> None:
    site.add_plugin("rtbuild-boom", "boom", EXPLODING_PLUGIN.format(name="boom"), version="0.9")
    result = run_cli(["build", str(context), "-t", "img:1"], env={"RTBUILD_STRICT_PLUGINS": "1"})
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error: plugin 'boom' from rtbuild-boom 0.9 failed to load" in result.stderr
    assert "exploded on import" in result.stderr
    assert 'raise RuntimeError("plugin boom exploded on import")' in result.stderr  # the failing line
    assert "Traceback (most recent call last)" not in result.stderr


def test_plugin_with_a_bad_argument_name_is_reported(site: FakeSite, context: Path) -> None:
    source = "from rtbuild import hookimpl\n\n@hookimpl\ndef pre_build(requets):\n    pass\n"
    site.add_plugin("rtbuild-typo", "typo", source)
    result = run_cli(["build", str(context), "-t", "img:1"], env={"RTBUILD_STRICT_PLUGINS": "1"})
    assert result.exit_code == 2
    assert "'typo'" in result.stderr and "requets" in result.stderr


def test_misspelt_hookimpl_is_an_error_naming_the_plugin(site: FakeSite, context: Path) -> None:
    source = "from rtbuild import hookimpl\n\n@hookimpl\ndef pre_biuld(request):\n    pass\n"
    site.add_plugin("rtbuild-misspelt", "misspelt", source, version="2.1")
    result = run_cli(["build", str(context), "-t", "img:1"])
    assert result.exit_code == 2
    assert "plugin 'misspelt' from rtbuild-misspelt 2.1 is invalid" in result.stderr
    assert "pre_biuld" in result.stderr and "hint:" in result.stderr
    with pytest.raises(PluginError, match="misspelt"):
        get_plugin_manager(Config())


def test_plugins_listing_shows_an_invalid_plugin_as_failed(site: FakeSite) -> None:
    source = "from rtbuild import hookimpl\n\n@hookimpl\ndef pre_biuld(request):\n    pass\n"
    site.add_plugin("rtbuild-misspelt", "misspelt", source)
    _add(site, "rtbuild-good", "good")
    result = run_cli(["plugins", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in result.json()}
    assert rows["misspelt"]["status"] == "failed" and "pre_biuld" in rows["misspelt"]["error"]
    assert rows["misspelt"]["hooks"] == [] and rows["good"]["status"] == "loaded"


def test_optionalhook_is_allowed(site: FakeSite) -> None:
    source = "from rtbuild import hookimpl\n\n@hookimpl(optionalhook=True)\ndef future_hook():\n    pass\n"
    site.add_plugin("rtbuild-future", "future", source)
    pm = get_plugin_manager(Config())
    assert next(r for r in pm.listing() if r.name == "future").status == "loaded"


def test_duplicate_plugin_names_name_both_distributions(site: FakeSite, context: Path) -> None:
    _add(site, "rtbuild-first", "dup")
    site.add_plugin("rtbuild-second", "dup", "", module="other_dup", version="2.0")
    result = run_cli(["build", str(context), "-t", "img:1"])
    assert result.exit_code == 2
    assert "'dup'" in result.stderr and "rtbuild-first 1.0" in result.stderr and "rtbuild-second 2.0" in result.stderr


# --- listing -------------------------------------------------------------------------------


def test_plugins_json_fields_and_statuses(site: FakeSite, marks: Path) -> None:
    _add(site, "rtbuild-good", "good")
    _add(site, "rtbuild-off", "off")
    site.add_plugin("rtbuild-boom", "boom", EXPLODING_PLUGIN.format(name="boom"), version="0.9")
    result = run_cli(["plugins", "--json"], env={"RTBUILD_DISABLE_PLUGINS": "off"})
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in result.json()}
    for row in rows.values():
        assert {"name", "kind", "distribution", "version", "status", "hooks", "error"} <= set(row)
    assert rows["fake"]["kind"] == "builder" and rows["fake"]["status"] == "available"
    assert rows["good"] | {"value": None} == {
        "name": "good",
        "kind": "plugin",
        "distribution": "rtbuild-good",
        "version": "1.0",
        "status": "loaded",
        "hooks": ["post_build", "pre_build"],
        "error": None,
        "value": None,
    }
    assert rows["off"]["status"] == "disabled" and rows["off"]["hooks"] == []
    assert rows["boom"]["status"] == "failed" and rows["boom"]["distribution"] == "rtbuild-boom"
    assert rows["boom"]["version"] == "0.9" and "exploded on import" in rows["boom"]["error"]
    assert rows["rtbuild.dispatch"]["hooks"] == ["build", "image_exists"]
    # stdout is exactly one JSON document; nothing else leaks into it.
    assert isinstance(json.loads(result.stdout), list)


def test_plugins_human_table(site: FakeSite, marks: Path) -> None:
    _add(site, "rtbuild-good", "good")
    site.add_plugin("rtbuild-boom", "boom", EXPLODING_PLUGIN.format(name="boom"))
    result = run_cli(["plugins"])
    assert result.exit_code == 0
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["NAME", "KIND", "DISTRIBUTION", "VERSION", "STATUS", "HOOKS"]
    assert any(line.split()[:5] == ["good", "plugin", "rtbuild-good", "1.0", "loaded"] for line in lines)
    assert any(line.split()[:5] == ["boom", "plugin", "rtbuild-boom", "1.0", "failed"] for line in lines)
    assert "boom: RuntimeError: plugin boom exploded on import" in result.stderr


# --- tracing -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["env", "flag"])
def test_trace_hooks_lists_hooks_plugins_and_durations(site: FakeSite, log: Path, context: Path, how: str) -> None:
    _add(site, "rtbuild-traced", "traced")
    args = ["build", str(context), "-t", "img:1"]
    env: dict[str, str | None] = {}
    if how == "flag":
        args = ["--trace-hooks", *args]
    else:
        env["RTBUILD_TRACE_HOOKS"] = "1"
    result = run_cli(args, env=env)
    assert result.exit_code == 0, result.stderr
    trace = [line for line in result.stderr.splitlines() if line.startswith("rtbuild trace:")]
    assert "rtbuild trace: pre_build -> [traced]" in trace
    assert "rtbuild trace: build -> [rtbuild.dispatch]" in trace
    assert "rtbuild trace: post_build -> [traced]" in trace
    timed = [line for line in trace if " ok in " in line]
    assert {line.split()[2] for line in timed} == {"pre_build", "build", "post_build"}
    assert all(line.endswith(" ms") for line in timed)
    assert result.stdout.strip() == "img:1"


def test_no_trace_without_asking(site: FakeSite, log: Path, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "img:1"])
    assert "rtbuild trace:" not in result.stderr


def test_config_file_allow_list(site: FakeSite, log: Path, context: Path, tmp_path: Path) -> None:
    _three(site)
    (tmp_path / "rtbuild.toml").write_text('load_plugins = ["extra"]\n')
    code, err = _build(context)
    assert code == 0, err
    assert {e.split(":")[1] for e in _events(log)} == {"extra"}
    # The environment overrides the file.
    assert load_config(env={"RTBUILD_LOAD_PLUGINS": "tools"}).load_plugins == ["tools"]


def test_plugins_see_the_request(site: FakeSite, context: Path) -> None:
    source = """
from rtbuild import hookimpl


@hookimpl
def pre_build(request, config):
    request.tags.append("img:extra")
    request.labels["org.example.by"] = config.builder
"""
    site.add_plugin("rtbuild-mut", "mut", source)
    request = BuildRequest(str(context), tags=["img:1"])
    result = run_build(request, config=load_config(env={"RTBUILD_BUILDER": "fake"}))
    assert result.tags == ["img:1", "img:extra"]
    assert request.labels == {"org.example.by": "fake"}
