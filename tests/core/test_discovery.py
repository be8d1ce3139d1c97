"""Builder discovery: listed from metadata without importing; only the selected one is imported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rtbuild import BuildRequest, Config, run_build
from rtbuild._framework.plugins import BUILDERS_GROUP, RtbuildPluginManager, discover, get_plugin_manager
from rtbuild.builder import V1_CAPABILITIES
from rtbuild.errors import BuilderNotFoundError, PluginError
from rtbuild.testing import FakeSite, run_cli

# A builder module that leaves a mark on disk when imported, so "not imported" is provable
# even if sys.modules were tidied up.
MARKING_BUILDER = """
import pathlib, os
pathlib.Path(os.environ["RTBUILD_TEST_MARKS"], "{name}").write_text("imported")
from rtbuild import RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    calls = []

    def build(self, path, tags, platform=None, extra_build_args=None):
        type(self).calls.append(list(extra_build_args or []))
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        return False
"""


def _two_builders(site: FakeSite) -> None:
    site.add_builder("rtbuild-alpha", "alpha", version="1.2", source=MARKING_BUILDER.format(name="alpha"))
    site.add_builder("rtbuild-beta", "beta", version="3.4", source=MARKING_BUILDER.format(name="beta"))


def test_builders_are_listed_without_importing(rtbuild_site: FakeSite, marks: Path) -> None:
    _two_builders(rtbuild_site)
    records = RtbuildPluginManager().builder_records()
    assert sorted(records) == ["alpha", "beta"]
    assert records["alpha"].distribution == "rtbuild-alpha"
    assert records["alpha"].version == "1.2"
    assert records["beta"].status == "available"
    assert list(marks.iterdir()) == []
    assert not any(name.startswith("rtbuild_alpha") or name.startswith("rtbuild_beta") for name in sys.modules)


def test_builders_command_shows_capabilities(rtbuild_site: FakeSite, marks: Path) -> None:
    _two_builders(rtbuild_site)
    result = run_cli(["builders", "--json"], env={"RTBUILD_BUILDER": "beta"})
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in result.json()}
    assert set(rows) == {"alpha", "beta"}
    assert rows["beta"]["selected"] is True and rows["alpha"]["selected"] is False
    assert rows["alpha"]["distribution"] == "rtbuild-alpha" and rows["alpha"]["version"] == "1.2"
    assert rows["alpha"]["value"] == "rtbuild_alpha_alpha_builder:SiteBuilder"
    # The class is imported to read what it declares (a v1 builder: the flag adapter's).
    assert rows["alpha"]["capabilities"] == V1_CAPABILITIES.to_dict()
    assert sorted(p.name for p in marks.iterdir()) == ["alpha", "beta"]
    human = run_cli(["builders"])
    assert human.exit_code == 0 and "alpha" in human.stdout and "rtbuild-beta" in human.stdout
    assert "target,no-cache,cache,dry-run" in human.stdout
    assert "warning" not in result.stderr  # beta is installed
    # A configured builder nothing installs: no row was marked, exit 0, not a word.
    for args in (["builders"], ["builders", "--json"]):
        typo = run_cli(args, env={"RTBUILD_BUILDER": "betta"})
        assert typo.exit_code == 0 and "*" not in typo.stdout
        assert "warning: the configured builder 'betta' not recognised (did you mean 'beta'?)" in typo.stderr


def test_builders_lists_a_builder_that_fails_to_import_as_failed(rtbuild_site: FakeSite) -> None:
    rtbuild_site.add_builder("rtbuild-broken", "broken", version="0.3", source="raise ImportError('no SDK')\n")
    rtbuild_site.add_builder("rtbuild-fine", "fine")
    result = run_cli(["builders", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in result.json()}
    assert rows["broken"]["status"] == "failed" and "no SDK" in rows["broken"]["error"]
    assert rows["broken"]["capabilities"] is None and rows["fine"]["capabilities"]["target"] is True


def test_help_does_not_import_builders(rtbuild_site: FakeSite, marks: Path) -> None:
    _two_builders(rtbuild_site)
    assert run_cli(["--help"]).exit_code == 0
    result = run_cli(["build", "--help"])
    assert result.exit_code == 0
    assert "Installed: alpha, beta." in " ".join(result.stdout.split())
    assert list(marks.iterdir()) == []


def test_plugins_listing_does_not_import_builders(rtbuild_site: FakeSite, marks: Path) -> None:
    _two_builders(rtbuild_site)
    result = run_cli(["plugins", "--json"])
    assert result.exit_code == 0, result.stderr
    builders = [row for row in result.json() if row["kind"] == "builder"]
    assert {row["name"]: row["status"] for row in builders} == {"alpha": "available", "beta": "available"}
    assert list(marks.iterdir()) == []


def test_only_the_selected_builder_is_imported(rtbuild_site: FakeSite, marks: Path, context: Path) -> None:
    _two_builders(rtbuild_site)
    pm = get_plugin_manager(Config(builder="beta"))
    result = run_build(BuildRequest(str(context), tags=["img:1"]), config=Config(builder="beta"), pm=pm)
    assert result.builder == "beta"
    assert [p.name for p in marks.iterdir()] == ["beta"]
    statuses = {r.name: r.status for r in pm.listing() if r.kind == "builder"}
    assert statuses == {"alpha": "available", "beta": "loaded"}


def test_unknown_builder_lists_the_available_ones(rtbuild_site: FakeSite, marks: Path) -> None:
    _two_builders(rtbuild_site)
    pm = RtbuildPluginManager()  # marks: the error imports them, to offer only those that import
    with pytest.raises(BuilderNotFoundError) as info:
        pm.create_builder("gamma", Config())
    message = str(info.value)
    assert "'gamma' not recognised, choose one of: alpha, beta" in message
    assert info.value.exit_code == 2 and info.value.hint


def test_a_misspelt_builder_gets_a_did_you_mean_and_where_names_come_from(rtbuild_site: FakeSite, marks: Path) -> None:
    _two_builders(rtbuild_site)
    with pytest.raises(BuilderNotFoundError) as info:
        RtbuildPluginManager().create_builder("alpah", Config())
    assert "'alpah' not recognised (did you mean 'alpha'?), choose one of: alpha, beta" in str(info.value)
    assert "RTBUILD_BUILDER" in (info.value.hint or "") and "configuration file" in (info.value.hint or "")


def test_no_builders_installed_says_so(rtbuild_site: FakeSite) -> None:
    with pytest.raises(BuilderNotFoundError, match=r"none installed"):
        RtbuildPluginManager().create_builder("docker", Config())


def test_duplicate_builder_names_name_both_distributions(rtbuild_site: FakeSite) -> None:
    rtbuild_site.add_builder("rtbuild-one", "same", version="1.0")
    rtbuild_site.add_builder("rtbuild-two", "same", version="2.0")
    rtbuild_site.add_builder("rtbuild-other", "other", version="3.0")
    with pytest.raises(PluginError) as info:
        discover(BUILDERS_GROUP)
    message = str(info.value)
    assert "'same'" in message and "rtbuild-one 1.0" in message and "rtbuild-two 2.0" in message
    # Only selecting that name breaks; the listings show everything and the conflict.
    result = run_cli(["builders", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = [(row["name"], row["distribution"], row["status"]) for row in result.json()]
    assert rows == [
        ("other", "rtbuild-other", "available"),
        ("same", "rtbuild-one", "conflict"),
        ("same", "rtbuild-two", "conflict"),
    ]
    human = run_cli(["builders"])
    assert human.exit_code == 0 and "conflict" in human.stdout and "rtbuild-two 2.0" in human.stderr
    listed = run_cli(["plugins", "--json"])
    assert listed.exit_code == 0 and [r["status"] for r in listed.json() if r["name"] == "same"] == ["conflict"] * 2
    with pytest.raises(PluginError, match=r"rtbuild-one 1\.0.*rtbuild-two 2\.0"):
        RtbuildPluginManager().create_builder("same", Config())
    assert RtbuildPluginManager().create_builder("other", Config()).name == "other"
    failed = run_cli(["build", ".", "-t", "x:1", "--builder", "same"])
    assert failed.exit_code == 2 and "registered by two distributions" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_builder_that_fails_to_import_is_reported(rtbuild_site: FakeSite, context: Path) -> None:
    rtbuild_site.add_builder("rtbuild-broken", "broken", version="0.3", source="raise ImportError('no engine SDK')\n")
    result = run_cli(["build", str(context), "-t", "x:1", "--builder", "broken"])
    assert result.exit_code == 2
    assert "'broken'" in result.stderr and "rtbuild-broken 0.3" in result.stderr
    assert "no engine SDK" in result.stderr and "Traceback" not in result.stderr


def test_entry_point_that_is_not_a_builder_is_rejected(rtbuild_site: FakeSite) -> None:
    rtbuild_site.add_builder("rtbuild-odd", "odd", source="class SiteBuilder:\n    pass\n")
    with pytest.raises(PluginError, match=r"not a rtbuild\.RuntimeBuilder subclass"):
        RtbuildPluginManager().create_builder("odd", Config())


def test_builder_from_config_receives_the_config(rtbuild_site: FakeSite, context: Path) -> None:
    source = """
from rtbuild import RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    seen = []

    def __init__(self, settings):
        self.settings = settings

    @classmethod
    def from_config(cls, config):
        cls.seen.append(config.builder_config("tabled"))
        return cls(config.builder_config("tabled"))

    def build(self, path, tags, platform=None, extra_build_args=None):
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        return True
"""
    rtbuild_site.add_builder("rtbuild-tabled", "tabled", source=source, module="tabled_builder")
    config = Config(builder="tabled", builders={"tabled": {"host": "unix:///x.sock", "timeout": 5}})
    builder = RtbuildPluginManager().create_builder("tabled", config)
    assert builder.name == "tabled"
    assert builder.settings == {"host": "unix:///x.sock", "timeout": 5}  # type: ignore[attr-defined]
