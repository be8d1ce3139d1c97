"""rtbuild-sbom's wiring without an engine: off unless enabled, a light import, documented
keys, and `rtbuild scan` without the distribution installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import rtbuild
from rtbuild.cli import main
from rtbuild_sbom import plugin
from rtbuild_sbom.settings import KEYS

REPO = Path(__file__).resolve().parents[2]


def test_installed_but_not_enabled_does_nothing() -> None:
    config = rtbuild.Config()
    config.plugins["sbom"] = {"osv_db": "/nonexistent"}  # would fail if anything ran
    result = rtbuild.BuildResult(image="app:1", tags=["app:1"], builder="docker", duration_s=1.0)
    request = rtbuild.BuildRequest(path=".", tags=["app:1"])

    class NoEngine:
        name = "docker"

        def __getattr__(self, attr: str) -> object:
            raise AssertionError(f"the disabled plugin asked the builder for {attr}")

    plugin.post_build(request=request, result=result, config=config, builder=NoEngine())  # type: ignore[arg-type]
    assert result.details == {}


def test_the_plugin_is_registered_and_its_module_imports_nothing_heavy() -> None:
    pm = rtbuild.get_plugin_manager(rtbuild.Config())
    assert pm.has_plugin("sbom")
    code = (
        "import sys, rtbuild_sbom.plugin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('cyclonedx', 'debian', 'packageurl', 'cvss', 'packaging', 'docker')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("key", KEYS)
def test_every_setting_is_documented(key: str) -> None:
    assert f"| `{key}` |" in (REPO / "docs" / "plugins" / "sbom.md").read_text(encoding="utf-8")
    assert f"| `[plugins.sbom]` | `{key}` |" in (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")


def test_scan_without_the_plugin_installed_exits_2_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes `import rtbuild_sbom` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "rtbuild_sbom", None)
    assert main(["scan", "app:1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "`rtbuild scan` needs the rtbuild-sbom plugin" in captured.err
    assert "pip install rtbuild-sbom" in captured.err


def test_scan_rejects_an_unknown_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "app:1", "--fail-on", "severe"]) == 2
    assert "severe" in capsys.readouterr().err
