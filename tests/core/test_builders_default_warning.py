"""`rtbuild builders` on a site with a third-party builder only and nothing configured: the
warning says 'docker' is the default no setting replaced, instead of calling it 'the
configured builder' (a user who configured nothing looked for a setting that was not there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli


def test_the_default_builder_is_called_the_default(
    rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no configuration file
    rtbuild_site.add_builder("rtbuild-acme", "acme")
    result = run_cli(["builders"])
    assert result.exit_code == 0 and "acme" in result.stdout
    assert "warning: builder 'docker' not recognised, choose one of: acme" in result.stderr
    assert "'docker' is the default when no --builder, RTBUILD_BUILDER or `builder` setting" in result.stderr
    assert "the configured" not in result.stderr
