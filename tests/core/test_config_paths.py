"""Relative paths in the configuration file mean the same files from every directory: they
are relative to the file's directory, not to wherever rtbuild happens to run (the nearest
``rtbuild.toml`` is found from any directory below it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from rtbuild import load_config, plugin_settings, setting
from rtbuild.testing import FakeSite, run_cli


@dataclass(frozen=True)
class PathTable:
    out: str = setting("", env="RTBUILD_TEST_OUT", path=True)
    home: str = setting("", path=True)
    absolute: str = setting("", path=True)
    name: str = setting("")  # not a path: kept as written


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "src" / "deep").mkdir(parents=True)
    (root / "rtbuild.toml").write_text(
        '[plugins.paths]\nout = "state/out.jsonl"\nhome = "~/x"\nabsolute = "/var/x"\nname = "a/b"\n'
    )
    monkeypatch.chdir(root / "src" / "deep")
    monkeypatch.delenv("RTBUILD_TEST_OUT", raising=False)
    return root


def test_a_relative_path_setting_is_relative_to_the_configuration_file(project: Path) -> None:
    table = plugin_settings(PathTable, load_config(), "paths")
    assert table.out == str(project / "state" / "out.jsonl")  # was src/deep/state/out.jsonl
    home = str(Path.home() / "x")  # expanded here: a backend's log_dir took '~' as a directory name
    assert (table.home, table.absolute, table.name) == (home, "/var/x", "a/b")


def test_a_relative_path_from_the_environment_is_relative_to_the_current_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTBUILD_TEST_OUT", "here.jsonl")
    assert plugin_settings(PathTable, load_config(), "paths").out == "here.jsonl"


def test_metrics_from_a_subdirectory_go_to_the_file_the_configuration_names(
    rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builds, from the project's root and from a subdirectory, land in one metrics
    file beside rtbuild.toml, and `rtbuild metrics` finds both from either directory."""
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add("rtbuild-metrics", entry_points={"rtbuild.plugins": {"metrics": "rtbuild_metrics.plugin"}})
    root = tmp_path / "project"
    (root / "sub").mkdir(parents=True)
    (root / "ctx").mkdir()
    (root / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    (root / "rtbuild.toml").write_text('builder = "fake"\n[plugins.metrics]\npath = "metrics.jsonl"\n')
    monkeypatch.delenv("RTBUILD_METRICS_FILE", raising=False)
    for where, tag in ((root, "app:1"), (root / "sub", "app:2")):
        monkeypatch.chdir(where)
        result = run_cli(["build", str(root / "ctx"), "-t", tag, "-q"])
        assert result.exit_code == 0, result.stderr
    assert not (root / "sub" / "metrics.jsonl").exists()  # the second build wrote here before
    lines = (root / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["image"] for line in lines] == ["app:1", "app:2"]
    report = run_cli(["metrics", "--json"])  # still in sub/
    assert report.exit_code == 0, report.stderr
    assert report.json()["total"]["builds"] == 2


def test_sbom_directories_are_relative_to_the_configuration_file(project: Path) -> None:
    from rtbuild_sbom.settings import Settings

    (project / "rtbuild.toml").write_text('[plugins.sbom]\ndir = "sboms"\nosv_db = "osv.zip"\n')
    settings = Settings.from_config(load_config())
    assert settings.dir == project / "sboms"
    assert settings.osv_db == project / "osv.zip"


def test_builder_log_directories_are_relative_to_the_configuration_file(project: Path) -> None:
    from rtbuild import builder_settings
    from rtbuild_docker.settings import DockerSettings
    from rtbuild_podman.builder import PodmanSettings

    (project / "rtbuild.toml").write_text('[builders.docker]\nlog_dir = "logs"\n[builders.podman]\nlog_dir = "plogs"\n')
    config = load_config()
    assert builder_settings(DockerSettings, config, "docker").log_dir == str(project / "logs")
    assert builder_settings(PodmanSettings, config, "podman").log_dir == str(project / "plogs")


def test_a_configuration_path_naming_a_directory_says_so(tmp_path: Path) -> None:
    result = run_cli(["build", str(tmp_path), "-t", "a:1", "--dry-run"], env={"RTBUILD_CONFIG": str(tmp_path)})
    assert result.exit_code == 2, result.stderr
    # It said "does not exist" of a directory that does.
    assert f"configuration file {tmp_path} is a directory, not a file" in result.stderr
