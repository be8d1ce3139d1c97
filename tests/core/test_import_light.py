"""Importing rtbuild and ``rtbuild --help``/``--version`` stay light: no docker, rich, httpx,
kubernetes or backend module is imported (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("docker", "rich", "httpx", "kubernetes", "yaml", "rtbuild_")

# Runs the CLI in-process like the console script does, then reports what got imported.
PROBE = """
import json, sys
argv = json.loads(sys.argv[1])
for extra in sys.argv[2:]:
    __import__(extra)
code = 0
if argv is not None:
    from rtbuild.cli._main import main
    sys.argv = ["rtbuild", *argv]
    code = main(argv)
else:
    import rtbuild
print("\\n@@MODULES@@" + json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def _imported(argv: list[str] | None, *also: str) -> tuple[int, list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), *also], capture_output=True, text=True, timeout=60, cwd="/"
    )
    out, _, modules = proc.stdout.rpartition("\n@@MODULES@@")
    return proc.returncode, json.loads(modules), out


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY or m.startswith("rtbuild_")]


@pytest.mark.parametrize("argv", [None, ["--help"], ["--version"], ["build", "--help"], ["plugins", "--help"]])
def test_nothing_heavy_is_imported(argv: list[str] | None) -> None:
    code, modules, out = _imported(argv)
    assert code == 0, out
    assert "rtbuild" in modules
    assert _heavy(modules) == [], f"{argv}: heavy imports {_heavy(modules)}"


def test_version_does_not_even_load_plugin_machinery() -> None:
    code, modules, out = _imported(["--version"])
    assert code == 0 and "version" in out
    assert "pluggy" not in modules and "importlib.metadata" not in modules


def test_the_probe_would_notice_a_heavy_import() -> None:
    # Guard against a probe that can never fail.
    code, modules, _ = _imported(None, "rich.console")
    assert code == 0 and _heavy(modules) != []


def test_console_script_version() -> None:
    script = Path(sys.executable).with_name("rtbuild")
    if not script.exists():
        pytest.fail(f"console script missing at {script}: is the core installed in this venv?")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "rtbuild, version" in proc.stdout


def test_docker_builder_import_leaves_the_build_path_unloaded() -> None:
    # An exact hit or an image check only asks the engine; the build spec, the client
    # choice, the engine kit's digest code, socket.py and OpenSSL load with a build.
    code, modules, out = _imported(None, "rtbuild_docker", "rtbuild._framework.locks")
    assert code == 0, out
    unloaded = ("rtbuild_docker.spec", "rtbuild_docker.buildkit", "rtbuild.enginekit._inputs", "socket", "hashlib")
    assert [m for m in unloaded if m in modules] == []
    # What moved out of the import path is still importable from where it was.
    import rtbuild_docker
    import rtbuild_docker.builder

    assert rtbuild_docker.BuildSpec is rtbuild_docker.builder.BuildSpec
    assert rtbuild_docker.BuildOutcome.__module__ == "rtbuild_docker.spec"
    with pytest.raises(AttributeError):
        _ = rtbuild_docker.builder.NoSuchName  # type: ignore[attr-defined]


def test_loading_every_plugin_leaves_openssl_and_tempfile_unloaded() -> None:
    # Every CLI build and `rtbuild plugins` load the installed plugins; hashing and temporary
    # files load only when a plugin fetches something (the vscode archive).
    plugins = ("rtbuild_vscode.plugin", "rtbuild_jupyter.plugin", "rtbuild_cacerts.plugin", "rtbuild_metrics.plugin")
    code, modules, out = _imported(None, *plugins, "rtbuild_sbom.plugin")
    assert code == 0, out
    assert [m for m in ("hashlib", "tempfile") if m in modules] == []


def test_listing_plugins_does_not_load_the_builder_api() -> None:
    # `rtbuild plugins` registers every plugin and the default dispatch plugin, whose
    # builder types are annotations only; the builder API loads with a build.
    code, modules, out = _imported(["plugins"])
    assert code == 0, out
    assert "docker" in out and "rtbuild.dispatch" in out  # it did list them
    assert [m for m in ("rtbuild.builder", "hashlib", "tempfile") if m in modules] == []
