"""The ``build_failed`` hook: called once with the error when a build fails, never on success,
and a failing implementation never hides the build's own error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rtbuild import AgentRuntimeBuildError, BuildRequest, Config, hookimpl, run_build
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild.errors import BuildFailedError
from rtbuild.testing import FakeBuilder


class Failures:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def build_failed(
        self, request: BuildRequest, error: Exception, config: Config, builder: Any, duration_s: float
    ) -> None:
        self.calls.append({"tags": request.tags, "error": error, "builder": builder, "duration_s": duration_s})


def test_called_with_the_error_and_builder(rtbuild_pm: RtbuildPluginManager, context: Path) -> None:
    seen = Failures()
    rtbuild_pm.register(seen)
    builder = FakeBuilder(fail_with="boom")
    with pytest.raises(BuildFailedError, match="boom"):
        run_build(BuildRequest(str(context), tags=["i:1"]), config=Config(), pm=rtbuild_pm, builder=builder)
    (call,) = seen.calls
    assert call["tags"] == ["i:1"] and call["builder"] is builder
    assert isinstance(call["error"], BuildFailedError) and call["error"].step == "fake build"
    assert call["duration_s"] >= 0


def test_not_called_on_success(rtbuild_pm: RtbuildPluginManager, context: Path) -> None:
    seen = Failures()
    rtbuild_pm.register(seen)
    run_build(BuildRequest(str(context), tags=["i:1"]), config=Config(), pm=rtbuild_pm, builder=FakeBuilder())
    assert seen.calls == []


def test_called_when_pre_build_or_post_build_refuses(rtbuild_pm: RtbuildPluginManager, context: Path) -> None:
    class Policy:
        @hookimpl
        def post_build(self) -> None:
            raise AgentRuntimeBuildError("vulnerable", step="scan")

    seen = Failures()
    rtbuild_pm.register(seen)
    rtbuild_pm.register(Policy())
    with pytest.raises(AgentRuntimeBuildError, match="vulnerable"):
        run_build(BuildRequest(str(context), tags=["i:1"]), config=Config(), pm=rtbuild_pm, builder=FakeBuilder())
    assert [c["error"].step for c in seen.calls] == ["scan"]


def test_a_failing_hook_does_not_replace_the_error(rtbuild_pm: RtbuildPluginManager, context: Path) -> None:
    class Broken:
        @hookimpl
        def build_failed(self) -> None:
            raise RuntimeError("recorder broke")

    rtbuild_pm.register(Broken())
    with pytest.warns(RuntimeWarning, match="recorder broke"), pytest.raises(BuildFailedError, match="boom"):
        run_build(
            BuildRequest(str(context), tags=["i:1"]),
            config=Config(),
            pm=rtbuild_pm,
            builder=FakeBuilder(fail_with="boom"),
        )
