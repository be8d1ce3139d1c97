"""Exit 4 (built, then a post_build hook failed) without --json: stdout stays empty, as for
every failure (docs/cli.md), even when the plugin prints; stderr names the image."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

_CHATTY_FAILING_PLUGIN = """
import rtbuild

@rtbuild.hookimpl
def post_build(request, result):
    print("plugin chatter")
    raise RuntimeError("scan crashed")
"""


@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["progress", "quiet"])
def test_post_build_failure_leaves_stdout_empty(
    rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: list[str]
) -> None:
    rtbuild_site.add_builder("rtbuild-docker", "docker", module="streams_site_builder")
    rtbuild_site.add_plugin("acme-chatty", "chatty", _CHATTY_FAILING_PLUGIN, module="streams_chatty_plugin")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    result = run_cli(["build", "ctx", "-t", "img:1", *quiet])
    assert result.exit_code == 4, result.stderr
    assert result.stdout == ""
    assert "plugin chatter" in result.stderr
    assert "error: img:1 was built, then a post_build hook failed: RuntimeError: scan crashed" in result.stderr
    assert "Traceback" not in result.stderr
