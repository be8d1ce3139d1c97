"""Ctrl-C while a ``build_failed`` hook runs (a webhook that hangs) still says why the build
failed: the interrupt wins (exit 130) after a warning with the build's own error (masked:
it is said through the build's reporter).
Before, the error was lost: only 'rtbuild: interrupted', as if the build had been stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

HANGS = """
import rtbuild

@rtbuild.hookimpl
def build_failed(request, error):
    raise KeyboardInterrupt  # the user's Ctrl-C while the hook waits for its webhook
"""


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add_plugin("rtbuild-hook", "notify", HANGS)
    monkeypatch.setenv("RTBUILD_BUILDER", "fake")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


def test_the_build_error_is_said_before_the_interrupt(site: FakeSite, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nRUN echo hi; exit 3\n")
    result = run_cli(["build", str(context), "-t", "img:1"])
    assert (result.exit_code, result.stdout) == (130, "")
    assert "warning: interrupted while build_failed hooks ran; the build failed: step 2/2 RUN" in result.stderr
    assert "failed with exit code 3" in result.stderr
    assert result.stderr.rstrip().endswith("rtbuild: interrupted")
