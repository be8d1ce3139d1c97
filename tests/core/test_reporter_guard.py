"""A reporter that raises (a closed websocket, a full queue) ends the build in an
AgentRuntimeBuildError that names the reporter, whatever the builder made of the exception;
before, the reporter's own ConnectionResetError surfaced from inside the builder (or the
builder's BuildFailedError wrapping it, blamed on the builder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import rtbuild
from rtbuild import (
    AgentRuntimeBuildError,
    BuilderCapabilities,
    BuildFailedError,
    BuildRequest,
    BuildResult,
    RuntimeBuilder,
)


class _ClosedSocket(rtbuild.Reporter):
    def __init__(self, on: str) -> None:
        self.on = on
        self.calls = 0

    def line(self, text: str, *, source: str = "build") -> None:
        self.calls += 1
        if self.on == "line":
            raise ConnectionResetError("websocket closed")

    def event(self, kind: str, **fields: Any) -> None:
        self.calls += 1
        if kind == self.on:
            raise ConnectionResetError(f"websocket closed at {kind}")


class _Chatty(RuntimeBuilder):
    """Reports lines; wraps whatever its reporting raises, as engine-streaming builders do."""

    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities()
    cleaned_up = False

    def build_request(self, request: BuildRequest) -> BuildResult:
        reporter = rtbuild.get_reporter()
        try:
            for n in range(3):
                reporter.line(f"step {n}")
        except Exception as exc:
            raise BuildFailedError(f"engine output could not be streamed: {exc}", step="build") from exc
        finally:
            reporter.event("step", step="clean up", message="stopping the engine")  # reported while unwinding
            type(self).cleaned_up = True
        return BuildResult(request.tags[0], list(request.tags), "chatty", 0.0)

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        raise AssertionError("the typed entry point is used")

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        return False


def _build(tmp_path: Path, reporter: rtbuild.Reporter) -> BuildResult:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with rtbuild.use_reporter(reporter):
        return rtbuild.run_build(
            BuildRequest(str(tmp_path), tags=["guard:1"]), config=rtbuild.Config(), builder=_Chatty()
        )


@pytest.mark.parametrize("on", ["line", "build_started", "build_finished"])
def test_a_raising_reporter_is_named_not_the_builder(tmp_path: Path, on: str) -> None:
    reporter = _ClosedSocket(on)
    with pytest.raises(AgentRuntimeBuildError) as caught:
        _build(tmp_path, reporter)
    error = caught.value
    assert not isinstance(error, BuildFailedError)  # the builder's wrapper does not take the blame
    assert error.blame is not None and error.blame.endswith("test_reporter_guard._ClosedSocket")
    assert isinstance(error.__cause__, ConnectionResetError)
    assert "ConnectionResetError" in error.message and error.hint and "must not raise" in error.hint
    assert error.step is not None and on.replace("_", "") in error.step.replace("_", "")


def test_after_failing_once_the_reporter_is_not_called_again(tmp_path: Path) -> None:
    reporter = _ClosedSocket("line")
    _Chatty.cleaned_up = False
    with pytest.raises(AgentRuntimeBuildError):
        _build(tmp_path, reporter)
    assert _Chatty.cleaned_up  # the builder's clean-up ran to its end, its own report dropped
    assert reporter.calls == 2  # build_started, then the line that raised: nothing after


def test_a_reporter_that_does_not_raise_sees_everything(tmp_path: Path) -> None:
    reporter = _ClosedSocket("never")
    result = _build(tmp_path, reporter)
    assert result.image == "guard:1" and reporter.calls == 6  # started, 3 lines, clean up, finished
