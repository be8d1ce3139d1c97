"""``--dry-run`` names the builder to blame for what its plan refuses, as a build does
(the plan's errors went out without the ``from:`` line, and ``"blame": null`` in JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

REFUSING_BUILDER = """
from rtbuild import BuilderCapabilities, BuildResult, CapabilityError, RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    capabilities = BuilderCapabilities(cache_export=True)

    def build(self, path, tags, platform=None, extra_build_args=None):
        raise AssertionError("a dry run builds nothing")

    def plan(self, request):
        raise CapabilityError("this client cannot export a cache", step="check capabilities")

    def image_exists(self, image_name, pull_from_repo=True):
        return False
"""


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-refuser", "refuser", source=REFUSING_BUILDER, module="refuser_dry_builder")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def test_a_plan_refused_by_the_builder_names_it(site: FakeSite) -> None:
    args = ["build", ".", "-t", "x:1", "--builder", "refuser", "--cache-to", "type=local,dest=/c", "--dry-run"]
    text = run_cli(args)
    assert text.exit_code == 2 and text.stdout == ""
    assert "from: builder refuser (rtbuild-refuser 1.0)" in text.stderr
    document = json.loads(run_cli([*args, "--json"]).stdout)
    assert document["error"] == "CapabilityError"
    assert document["blame"] == "builder refuser (rtbuild-refuser 1.0)"
