"""A build stopped (``build_timeout``, Ctrl-C) whose engine no longer answers: a frozen daemon
takes its client's connections and answers none, so the client waited on it through SIGINT
and SIGTERM alike and rtbuild held on for the whole escalation (10 s more), then blamed the
build's length. With the backend's :class:`rtbuild.enginekit.EngineProbe` the engine is
asked once after SIGINT; a silent one's client is killed at once (before SIGTERM), and the
error says the engine stopped answering."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild._framework.deadline import build_deadline
from rtbuild.enginekit import EngineProbe, run_build
from rtbuild.errors import BuildFailedError, EngineUnavailableError


def _engine(tmp_path: Path, *, exit_on_term: bool = False) -> list[str]:
    """A stand-in engine client that, like one whose engine is frozen, does not exit on SIGINT:
    it records each signal it gets (its children die of it; the loop goes on)."""
    signals = tmp_path / "signals"
    on_term = "; exit 1" if exit_on_term else ""
    script = (
        f"trap 'echo INT >> {signals}' INT; trap 'echo TERM >> {signals}{on_term}' TERM;"
        f" echo '#5 [2/3] RUN make'; echo $$ > {tmp_path}/pid; while :; do sleep 0.05; done"
    )
    return ["sh", "-c", script, "context"]


def _signals(tmp_path: Path) -> list[str]:
    path = tmp_path / "signals"
    return path.read_text().split() if path.exists() else []


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    import rtbuild.enginekit._stop as stop

    monkeypatch.setattr(stop, "GRACE_S", 0.2)
    monkeypatch.setattr(stop, "SIGINT_WAIT_S", 0.5)
    monkeypatch.setattr(stop, "SIGTERM_WAIT_S", 0.5)


def _probe(answers: bool, asked: list[bool]) -> EngineProbe:
    def ask() -> bool:
        asked.append(answers)
        return answers

    return EngineProbe("the Test engine at unix:///frozen.sock", ask, hint="check the test engine")


def test_a_timed_out_build_on_a_silent_engine_is_killed_and_blames_the_engine(tmp_path: Path) -> None:
    asked: list[bool] = []
    with build_deadline(0.3), pytest.raises(EngineUnavailableError) as info:
        run_build(_engine(tmp_path), env={}, log_path=str(tmp_path / "log"), stream=False, probe=_probe(False, asked))
    error = info.value
    assert asked == [False]
    assert _signals(tmp_path) == ["INT"], "the client got SIGTERM: the stop waited on a silent engine"
    assert "the Test engine at unix:///frozen.sock stopped answering" in error.message
    assert "build_timeout 0.3 s" in error.message
    assert error.step == "build step RUN make" and error.log_path == str(tmp_path / "log")
    assert error.hint and "check the test engine" in error.hint and "nothing was tagged" in error.hint
    assert _gone(int((tmp_path / "pid").read_text())), "the client outlived the build"


def test_an_engine_that_answers_keeps_the_escalation_and_the_timeout_error(tmp_path: Path) -> None:
    asked: list[bool] = []
    with build_deadline(0.3), pytest.raises(BuildFailedError) as info:
        run_build(_engine(tmp_path, exit_on_term=True), env={}, log_path=None, stream=False, probe=_probe(True, asked))
    assert not isinstance(info.value, EngineUnavailableError)
    assert "ran longer than build_timeout" in info.value.message
    assert asked == [True] and _signals(tmp_path) == ["INT", "TERM"]


def test_ctrl_c_on_a_silent_engine_kills_the_client_and_warns(tmp_path: Path) -> None:
    warnings: list[str] = []

    class Collect(rtbuild.Reporter):
        def event(self, kind: str, **fields: Any) -> None:
            if kind == "warning":
                warnings.append(str(fields.get("message")))

    def interrupt(line: str) -> None:
        if line.startswith("#5"):
            raise KeyboardInterrupt

    asked: list[bool] = []
    with rtbuild.use_reporter(Collect()), pytest.raises(KeyboardInterrupt):
        run_build(_engine(tmp_path), env={}, log_path=None, stream=False, on_line=interrupt, probe=_probe(False, asked))
    assert asked == [False] and _signals(tmp_path) == ["INT"]
    assert any(
        "the Test engine at unix:///frozen.sock stopped answering" in w and "check the test engine" in w
        for w in warnings
    ), warnings
    assert _gone(int((tmp_path / "pid").read_text()))


def test_a_probe_that_fails_to_ask_changes_nothing(tmp_path: Path) -> None:
    def broken() -> bool:
        raise RuntimeError("no socket")

    probe = EngineProbe("the Test engine", broken)
    with build_deadline(0.3), pytest.raises(BuildFailedError) as info:
        run_build(_engine(tmp_path, exit_on_term=True), env={}, log_path=None, stream=False, probe=probe)
    assert not isinstance(info.value, EngineUnavailableError)
    assert _signals(tmp_path) == ["INT", "TERM"]
