"""`rtbuild new builder|plugin NAME` writes a complete distribution (the fresh-venv install
and test run is tests/docker/test_new_distribution.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from rtbuild.testing import run_cli


def test_new_builder_writes_a_distribution(tmp_path: Path) -> None:
    result = run_cli(["new", "builder", "acme-two", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    root = tmp_path / "rtbuild-acme-two"
    assert result.stdout == f"{root}\n"
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "rtbuild-acme-two"
    assert meta["project"]["entry-points"]["rtbuild.builders"] == {
        "acme-two": "rtbuild_acme_two.builder:AcmeTwoBuilder"
    }
    assert meta["project"]["dependencies"][0].startswith("rtbuild>=")
    source = (root / "src" / "rtbuild_acme_two" / "builder.py").read_text()
    compile(source, "builder.py", "exec")
    assert "class AcmeTwoBuilder(RuntimeBuilder):" in source and "def build_request" in source
    test = (root / "tests" / "test_contract.py").read_text()
    assert "class TestAcmeTwoBuilderContract(BuilderContract):" in test
    assert "rtbuild new builder acme-two" in (root / "README.md").read_text()


def test_new_plugin_writes_a_distribution(tmp_path: Path) -> None:
    result = run_cli(["new", "plugin", "stamp", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    root = tmp_path / "rtbuild-stamp"
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["rtbuild.plugins"] == {"stamp": "rtbuild_stamp.plugin"}
    plugin = (root / "src" / "rtbuild_stamp" / "plugin.py").read_text()
    compile(plugin, "plugin.py", "exec")
    assert "def pre_build(" in plugin and "print(" not in plugin
    assert "rtbuild_pm" in (root / "tests" / "test_plugin.py").read_text()


@pytest.mark.parametrize("name", ["Acme", "acme_2", "2acme", "acme--x", "acme-"])
def test_a_bad_name_is_a_usage_error(tmp_path: Path, name: str) -> None:
    result = run_cli(["new", "builder", name, "-o", str(tmp_path)])
    assert result.exit_code == 2 and "lowercase letters" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_kept_unless_forced(tmp_path: Path) -> None:
    assert run_cli(["new", "plugin", "stamp", "-o", str(tmp_path)]).exit_code == 0
    again = run_cli(["new", "plugin", "stamp", "-o", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert run_cli(["new", "plugin", "stamp", "-o", str(tmp_path), "--force"]).exit_code == 0


def test_an_unwritable_output_is_a_usage_error_not_an_internal_one(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")  # -o under a file: no user can write there, root included
    result = run_cli(["new", "plugin", "stamp", "-o", str(tmp_path / "afile" / "sub"), "--json"])
    assert result.exit_code == 2, result.stderr
    assert result.json()["error"] == "ConfigError" and "cannot write" in result.json()["message"]
    assert "internal error" not in result.stderr
