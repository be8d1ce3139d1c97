"""A builder distribution written as a third party would, built as a wheel, pip-installed with
the core into a fresh venv (no system site-packages) and driven through that venv's ``rtbuild``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

FILES = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling>=1.18"]
        build-backend = "hatchling.build"

        [project]
        name = "acme-rtbuild-fake"
        version = "0.3.0"
        description = "A third-party rtbuild backend, written against the v1 contract only"
        requires-python = ">=3.11"
        dependencies = ["rtbuild>=0.1"]

        [project.entry-points."rtbuild.builders"]
        acmefake = "acme_fake.builder:AcmeBuilder"

        [project.entry-points."rtbuild.plugins"]
        acme-audit = "acme_fake.audit"
        acme-broken = "acme_fake.broken"

        [tool.hatch.build.targets.wheel]
        packages = ["src/acme_fake"]
    """,
    "src/acme_fake/__init__.py": "",
    "src/acme_fake/builder.py": """
        import json

        from rtbuild import RuntimeBuilder


        class AcmeBuilder(RuntimeBuilder):
            \"\"\"Builds nothing; records what it was asked, in the file its config table names.\"\"\"

            def __init__(self, record):
                self.record = record

            @classmethod
            def from_config(cls, config):
                return cls(config.builder_config("acmefake")["record"])

            def build(self, path, tags, platform=None, extra_build_args=None):
                call = {"path": path, "tags": tags, "platform": platform, "extra_build_args": extra_build_args}
                with open(self.record, "a") as fh:
                    fh.write(json.dumps(call) + "\\n")
                return tags[0]

            def image_exists(self, image_name, pull_from_repo=True):
                return False
    """,
    "src/acme_fake/audit.py": """
        from rtbuild import hookimpl


        def _log(config, line):
            with open(config.plugin_config("acme-audit")["log"], "a") as fh:
                fh.write(line + "\\n")


        @hookimpl
        def pre_build(request, config):
            _log(config, "pre_build " + " ".join(request.tags))


        @hookimpl
        def post_build(request, result, config):
            _log(config, "post_build " + result.image)
    """,
    "src/acme_fake/broken.py": """
        raise ImportError("acme-broken needs libacme, which is not installed")
    """,
}


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_") and k != "PYTHONPATH"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, **kwargs)


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("third-party")
    source = root / "acme-rtbuild-fake"
    for relative, text in FILES.items():
        target = source / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip"]
    # Build deps (hatchling) come from the dev venv, so this works offline.
    _ok(_run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO / "core")]))
    _ok(_run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)]))
    env_dir = root / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)]))
    python = env_dir / "bin" / "python"
    # The dev venv's pip installs into the fresh one; the wheels are found locally.
    _ok(_run([*pip, "--python", str(python), "install", "-q", "--find-links", str(wheels), "acme-rtbuild-fake"]))
    yield env_dir


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "rtbuild.toml").write_text(
        f'[builders.acmefake]\nrecord = "{tmp_path / "record.jsonl"}"\n\n'
        f'[plugins.acme-audit]\nlog = "{tmp_path / "audit.log"}"\n'
    )
    return tmp_path


def test_the_venv_is_fresh(venv: Path) -> None:
    proc = _ok(_run([str(venv / "bin" / "python"), "-c", "import rtbuild, sys; print(rtbuild.__file__, sys.prefix)"]))
    module, prefix = proc.stdout.split()
    assert module.startswith(str(venv)) and prefix == str(venv)
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg


def test_builder_is_listed(venv: Path, workdir: Path) -> None:
    proc = _ok(_run([str(venv / "bin" / "rtbuild"), "builders", "--json"], cwd=workdir))
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["acmefake"]["distribution"] == "acme-rtbuild-fake"
    assert rows["acmefake"]["version"] == "0.3.0"
    assert rows["acmefake"]["value"] == "acme_fake.builder:AcmeBuilder"


def test_plugins_listing_shows_loaded_and_failed(venv: Path, workdir: Path) -> None:
    proc = _ok(_run([str(venv / "bin" / "rtbuild"), "plugins", "--json"], cwd=workdir))
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["acmefake"]["kind"] == "builder" and rows["acmefake"]["status"] == "available"
    assert rows["acme-audit"]["status"] == "loaded" and rows["acme-audit"]["hooks"] == ["post_build", "pre_build"]
    broken = rows["acme-broken"]
    assert broken["status"] == "failed" and broken["distribution"] == "acme-rtbuild-fake"
    assert broken["error"] == "ImportError: acme-broken needs libacme, which is not installed"


def test_build_through_the_cli(venv: Path, workdir: Path) -> None:
    cmd = [str(venv / "bin" / "rtbuild"), "build", "ctx", "-t", "acme/img:1", "--builder", "acmefake"]
    proc = _ok(_run([*cmd, "--build-arg", "A=B", "--label", "team=agents"], cwd=workdir))
    assert proc.stdout == "acme/img:1\n"
    # The broken plugin is reported (name, distribution, version, error) and skipped.
    assert "warning: plugin 'acme-broken' from acme-rtbuild-fake 0.3.0 failed to load" in proc.stderr
    assert "libacme" in proc.stderr and "Traceback" not in proc.stderr
    (call,) = [json.loads(line) for line in (workdir / "record.jsonl").read_text().splitlines()]
    assert call["path"] == "ctx" and call["tags"] == ["acme/img:1"]
    assert call["extra_build_args"] == ["--build-arg", "A=B", "--label", "team=agents"]
    assert (workdir / "audit.log").read_text().splitlines() == ["pre_build acme/img:1", "post_build acme/img:1"]


def test_strict_mode_refuses_the_broken_plugin(venv: Path, workdir: Path) -> None:
    env_cmd = ["env", "RTBUILD_STRICT_PLUGINS=1", str(venv / "bin" / "rtbuild")]
    proc = _run([*env_cmd, "build", "ctx", "-t", "acme/img:1", "--builder", "acmefake"], cwd=workdir)
    assert proc.returncode == 2
    assert "error: plugin 'acme-broken' from acme-rtbuild-fake 0.3.0 failed to load" in proc.stderr
    assert not (workdir / "record.jsonl").exists()
