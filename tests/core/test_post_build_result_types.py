"""A ``post_build`` hook that gives a result field another type (``result.image = 5``):
stdout printed ``5`` as the built image, and ``--json`` carried it. The field is put back
and the plugin named (exit 4: the image itself is usable)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

SPOILER = """
import rtbuild


@rtbuild.hookimpl
def post_build(request, result, config, builder):
    result.image = 5
"""


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-site", "site")
    rtbuild_site.add_plugin("rtbuild-spoiler", "spoiler", SPOILER, module="spoiler_result_plugin")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def test_a_result_field_given_another_type_is_put_back_and_the_plugin_named(site: FakeSite) -> None:
    text = run_cli(["build", ".", "-t", "app:1", "--builder", "site"])
    assert text.exit_code == 4 and text.stdout.strip() != "5"
    assert "set BuildResult.image to a int" in text.stderr and "spoiler" in text.stderr
    assert "app:1 was built" in text.stderr  # the message names the real image
    document = json.loads(run_cli(["build", ".", "-t", "app:1", "--builder", "site", "--json"]).stdout)
    assert document["error"] == "PostBuildError"
    assert document["result"]["image"] == "app:1"
    assert "rtbuild-spoiler" in document["blame"]
