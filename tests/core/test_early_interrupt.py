"""A Ctrl-C in the command's first ~50 ms, while Python still imports the CLI, ends rtbuild
as one during a build does: 'rtbuild: interrupted', exit 130, no traceback.

The console script imported the click group before ``run()`` could catch anything, so an
interrupt then printed a ``KeyboardInterrupt`` traceback from the script's import line.
The signal is sent (a real SIGINT) the moment ``click`` is first imported, so the test
does not depend on timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Installed through sitecustomize, before the console script's first line runs.
_SITECUSTOMIZE = """
import os, signal, sys

class _InterruptOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["RTBUILD_TEST_INTERRUPT_ON"]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)  # delivered on the next bytecode: mid-import
        return None

sys.meta_path.insert(0, _InterruptOnImport())
"""

_SCRIPT = Path(sys.executable).with_name("rtbuild")


def _run(tmp_path: Path, argv: list[str], module: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(tmp_path),
        "RTBUILD_TEST_INTERRUPT_ON": module,
    }
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


@pytest.mark.parametrize("module", ["click", "dataclasses"])
@pytest.mark.parametrize("how", ["script", "python -m"])
def test_interrupt_while_the_cli_imports_is_quiet(tmp_path: Path, module: str, how: str) -> None:
    assert _SCRIPT.is_file(), f"no console script next to {sys.executable}"
    command = [str(_SCRIPT)] if how == "script" else [sys.executable, "-m", "rtbuild"]
    result = _run(tmp_path, [*command, "build", "ctx", "-t", "app:1"], module)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "rtbuild: interrupted"
    assert result.stdout == ""


def test_interrupt_while_the_cli_imports_keeps_the_json_promise(tmp_path: Path) -> None:
    result = _run(tmp_path, [str(_SCRIPT), "build", "ctx", "-t", "app:1", "--json"], "click")
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout) == {
        "error": "Interrupted",
        "message": "rtbuild interrupted (signal 2)",
        "exit_code": 130,
    }


def test_what_the_console_script_imports_before_run_stays_small() -> None:
    """The window no handler covers: ``import rtbuild.cli`` before ``run()``. typing alone
    took ~9 ms of it (about half); rtbuild's own modules name their types for mypy only, and
    the lazy exports import with ``__import__`` (importlib pulls in warnings). What this
    interpreter loads by itself does not count."""
    heavy = "{'typing', 'click', 'dataclasses', 'importlib', 'warnings', 'collections'}"
    probe = f"import sys; old = set(sys.modules); import rtbuild.cli; print(sorted({heavy} & (set(sys.modules) - old)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
