"""`rtbuild new builder acme2 && pip install './rtbuild-acme2[test]' && pytest rtbuild-acme2` in a
fresh venv (no system site-packages): the generated builder passes BuilderContract on the
real engine, and the generated plugin passes its own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_") and k != "PYTHONPATH"}
    # The suite's engine CLI first on PATH (tests/conftest.py prefers /usr/bin/docker too):
    # a docker CLI that builds with BuildKit keeps the generated contract run short.
    if os.path.exists("/usr/bin/docker"):
        env["PATH"] = "/usr/bin:" + env.get("PATH", "")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, **kwargs)


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("new-dist")
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip"]
    # Build deps (hatchling) come from the dev venv, so the core wheel builds offline.
    _ok(_run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO / "core")]))
    env_dir = root / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)]))
    python = env_dir / "bin" / "python"
    # hatchling too: the generated projects then build without an isolated build env each
    # (--no-build-isolation below), which keeps this test short; nothing else differs.
    _ok(_run([*pip, "--python", str(python), "install", "-q", "--find-links", str(wheels), "rtbuild", "pytest",
              "hatchling"]))  # fmt: skip
    yield env_dir


def test_new_builder_installs_and_passes_the_contract(venv: Path, tmp_path: Path) -> None:
    proc = _ok(_run([str(venv / "bin" / "rtbuild"), "new", "builder", "acme2"], cwd=tmp_path))
    assert proc.stdout.strip() == "rtbuild-acme2"
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    _ok(_run([*pip, "install", "-q", "--no-build-isolation", "./rtbuild-acme2[test]"], cwd=tmp_path))
    listed = _ok(_run([str(venv / "bin" / "rtbuild"), "builders", "--json"], cwd=tmp_path))
    assert '"acme2"' in listed.stdout and '"distribution": "rtbuild-acme2"' in listed.stdout
    shutil.rmtree(tmp_path / "rtbuild-acme2" / "src")  # the tests must run the installed code
    run = _ok(_run([str(venv / "bin" / "python"), "-m", "pytest", "rtbuild-acme2", "-q", "-p", "no:cacheprovider"],
                   cwd=tmp_path))  # fmt: skip
    # Every test of the suite ran (none skipped for want of an engine) and passed.
    from rtbuild.testing import BuilderContract

    expected = len([name for name in dir(BuilderContract) if name.startswith("test_")])
    assert f"{expected} passed" in run.stdout and "skipped" not in run.stdout, run.stdout


def test_new_plugin_installs_and_passes_its_tests(venv: Path, tmp_path: Path) -> None:
    _ok(_run([str(venv / "bin" / "rtbuild"), "new", "plugin", "stamp2"], cwd=tmp_path))
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    _ok(_run([*pip, "install", "-q", "--no-build-isolation", "./rtbuild-stamp2[test]"], cwd=tmp_path))
    listed = _ok(_run([str(venv / "bin" / "rtbuild"), "plugins", "--json"], cwd=tmp_path))
    assert '"stamp2"' in listed.stdout and '"status": "loaded"' in listed.stdout
    run = _ok(_run([str(venv / "bin" / "python"), "-m", "pytest", "rtbuild-stamp2", "-q", "-p", "no:cacheprovider"],
                   cwd=tmp_path))  # fmt: skip
    assert "2 passed" in run.stdout
