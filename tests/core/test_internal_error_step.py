"""A plugin's or builder's bug (an exception that is no rtbuild error) names the hook it came
out of as the error's step, in `rtbuild build` (text and JSON) and in `build-many`, and the
hint asks to report it *to* the authors.

Before, `rtbuild build` printed no step at all ("error: internal error: ValueError: ...",
"from: ...", "hint: ... and report the authors of plugin X"), and build-many said
"step: build" for a pre_build hook's bug.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

BUGGY = """
import rtbuild

@rtbuild.hookimpl
def pre_build(request):
    raise ValueError("a bug in the plugin")
"""

BLAME = "plugin buggy (rtbuild-buggy 0.7)"


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add_plugin("rtbuild-buggy", "buggy", BUGGY, version="0.7")
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def test_a_plugin_bug_names_its_hook_as_the_step(site: FakeSite, context: Path) -> None:
    result = run_cli(["build", str(context), "-t", "img:1"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "  step: pre_build hook\n" in result.stderr
    assert f"report it to the authors of {BLAME}" in result.stderr
    document = run_cli(["build", str(context), "-t", "img:1", "--json", "-q"]).json()
    assert document["step"] == "pre_build hook" and document["blame"] == BLAME


def test_build_many_names_the_hook_too(site: FakeSite, context: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.toml"
    batch.write_text(f'[[build]]\nname = "one"\npath = "{context}"\ntags = ["img:1"]\n')
    report = run_cli(["build-many", str(batch), "--json", "-q"]).json()
    error = report["builds"][0]["error"]
    assert error["step"] == "pre_build hook" and error["blame"] == BLAME
