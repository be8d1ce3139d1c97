"""The console script with a closed stderr, stdout or stdin (``2>&-``, a supervisor that
closes them). With stderr closed Python sets ``sys.stderr`` to None: every build failed
at once as an internal error it could not even print (exit 1, nothing anywhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = Path(sys.executable).with_name("rtbuild")


def _run(argv: list[str], cwd: Path, close: int) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(_SCRIPT), "--config", os.devnull, *argv],
        cwd=cwd,
        capture_output=True,
        preexec_fn=lambda: os.close(close),  # after the pipes are in place: the child starts without it
        timeout=120,
    )


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def test_a_closed_stderr_does_not_fail_the_command(ctx: Path) -> None:
    result = _run(["build", "ctx", "-t", "closed-streams:1", "--dry-run"], ctx, close=2)
    assert result.returncode == 0
    assert result.stdout.decode().endswith(" ctx\n") and "-t closed-streams:1" in result.stdout.decode()


def test_a_closed_stderr_keeps_the_exit_code_of_an_error(ctx: Path) -> None:
    result = _run(["build", "nope", "-t", "closed-streams:1", "--json"], ctx, close=2)
    assert result.returncode == 2  # BuildContextError, not an internal error (1)
    assert b'"BuildContextError"' in result.stdout


@pytest.mark.parametrize("close", [0, 1])
def test_a_closed_stdin_or_stdout_does_not_fail_the_command(ctx: Path, close: int) -> None:
    result = _run(["build", "ctx", "-t", "closed-streams:1", "--dry-run"], ctx, close=close)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("options", [["--json"], []], ids=["json", "text"])
def test_a_reader_that_went_away_is_said_on_stderr(ctx: Path, options: list[str]) -> None:
    """``rtbuild ... | head -c0``: writing the result fails with EPIPE, and rtbuild exited 1
    with nothing on stderr (click's handling), a failure without a why."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before rtbuild writes
    try:
        result = subprocess.run(
            [str(_SCRIPT), "--config", os.devnull, "build", "ctx", "-t", "closed-streams:1", "--dry-run", *options],
            cwd=ctx,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines()[-1] == (
        "rtbuild: the result was not written: stdout was closed (broken pipe)"
    ), result.stderr
    assert b"Traceback" not in result.stderr
