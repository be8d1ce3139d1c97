"""`build_timeout`: the engine build is stopped at the deadline, with a typed error that
names the step and the log's last lines; its configuration is validated."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rtbuild._framework.config import load_config
from rtbuild._framework.deadline import build_deadline
from rtbuild.cli import main
from rtbuild.enginekit import run_build
from rtbuild.errors import BuildFailedError, ConfigError


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has ended), after a moment to die."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return False
        if state == "Z":
            return False
        time.sleep(0.05)
    return True


def _engine(tmp_path: Path, seconds: int) -> list[str]:
    """A stand-in engine CLI: prints a BuildKit step line, records its pids, then sleeps in a child.
    (run_build adds ``--iidfile FILE`` before the last argument: they land in ``$0``/``$1``.)"""
    script = f"echo '#5 [2/3] RUN make'; echo compiling; sleep {seconds} & echo $$ $! > {tmp_path}/pids; wait; exit 0"
    return ["sh", "-c", script, "context"]


def test_the_engine_build_is_stopped_at_the_deadline_with_the_step_and_tail(tmp_path: Path) -> None:
    started = time.monotonic()
    with build_deadline(1.0), pytest.raises(BuildFailedError) as info:
        run_build(_engine(tmp_path, 120), env={}, log_path=str(tmp_path / "log"), stream=False)
    assert time.monotonic() - started < 60  # stopped, not run to its end (120 s)
    error = info.value
    assert "build_timeout (1 s)" in error.message
    assert error.step == "build step RUN make"
    assert "compiling" in (error.log_tail or [])
    assert error.log_path == str(tmp_path / "log")
    assert error.hint and "--build-timeout" in error.hint
    shell, sleeper = (int(pid) for pid in (tmp_path / "pids").read_text().split())
    assert not _alive(shell) and not _alive(sleeper), "the build's process group outlived the deadline"


def test_a_build_within_the_deadline_is_untouched(tmp_path: Path) -> None:
    with build_deadline(30.0):
        result = run_build(_engine(tmp_path, 0), env={}, log_path=None, stream=False)
    assert result.returncode == 0


def test_no_deadline_outside_build_deadline_or_with_none(tmp_path: Path) -> None:
    with build_deadline(None):
        result = run_build(_engine(tmp_path, 2), env={}, log_path=None, stream=False)
    assert result.returncode == 0


@pytest.mark.parametrize(
    "text", ["build_timeout = 0", "build_timeout = -5", "build_timeout = nan", "build_timeout = -inf"]
)
def test_a_bad_build_timeout_in_the_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rtbuild.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match="build_timeout"):
        load_config(path, env={})


def test_build_timeout_from_the_environment(tmp_path: Path) -> None:
    assert load_config(env={"RTBUILD_BUILD_TIMEOUT": "90"}, search_from=tmp_path).build_timeout == 90.0
    with pytest.raises(ConfigError, match="RTBUILD_BUILD_TIMEOUT"):
        load_config(env={"RTBUILD_BUILD_TIMEOUT": "-1"}, search_from=tmp_path)
    with pytest.raises(ConfigError, match="RTBUILD_BUILD_TIMEOUT"):
        load_config(env={"RTBUILD_BUILD_TIMEOUT": "soon"}, search_from=tmp_path)


@pytest.mark.parametrize("value", ["0", "nan", "-3"])
def test_a_bad_build_timeout_flag_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", ".", "-t", "x:1", "--build-timeout", value, "--dry-run"]) == 2
    assert "--build-timeout" in capsys.readouterr().err


def test_inf_lifts_a_configured_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``inf`` is no bound, from any source, so one run can lift the file's or the
    environment's ``build_timeout`` (``--build-timeout inf`` was refused, and no other value
    meant "none")."""
    path = tmp_path / "rtbuild.toml"
    path.write_text("build_timeout = 60\n")
    assert load_config(path, env={}).build_timeout == 60.0
    assert load_config(path, env={"RTBUILD_BUILD_TIMEOUT": "inf"}).build_timeout is None
    assert load_config(path, env={}, overrides={"build_timeout": float("inf")}).build_timeout is None
    path.write_text("build_timeout = inf\n")
    assert load_config(path, env={}).build_timeout is None
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert main(["build", str(tmp_path), "-t", "x:1", "--build-timeout", "inf", "--dry-run"]) == 0
    assert "--build-timeout" not in capsys.readouterr().err
