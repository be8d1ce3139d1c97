"""Each hook's contract, exercised through the pipeline with the test kit's fixtures."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from rtbuild import AgentRuntimeBuildError, BuildRequest, BuildResult, Config, check_image, hookimpl, run_build
from rtbuild._framework.config import Config as ConfigClass
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild.errors import BuildFailedError
from rtbuild.testing import FakeBuilder


def _run(pm: RtbuildPluginManager, builder: FakeBuilder, context: Path, **fields: Any) -> BuildResult:
    fields.setdefault("tags", ["img:1"])
    return run_build(BuildRequest(str(context), **fields), config=Config(), pm=pm, builder=builder)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []


def test_pre_build_can_change_the_request(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    class Plugin:
        @hookimpl
        def pre_build(self, request: BuildRequest, config: ConfigClass) -> None:
            assert isinstance(config, ConfigClass)
            request.tags.append("img:extra")
            request.build_args["FROM_PLUGIN"] = "1"
            request.labels["by"] = "plugin"
            request.platform = "linux/arm64"
            request.data["seen"] = True

    rtbuild_pm.register(Plugin())
    result = _run(rtbuild_pm, fake_builder, context)
    (call,) = fake_builder.calls
    assert call["tags"] == ["img:1", "img:extra"] and call["platform"] == "linux/arm64"
    assert call["extra_build_args"] == ["--build-arg", "FROM_PLUGIN=1", "--label", "by=plugin"]
    assert result.tags == ["img:1", "img:extra"]


def test_pre_build_error_stops_the_build(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    class Policy:
        @hookimpl
        def pre_build(self, request: BuildRequest) -> None:
            raise AgentRuntimeBuildError("tag must be pinned", step="policy", hint="use a version tag")

    rtbuild_pm.register(Policy())
    with pytest.raises(AgentRuntimeBuildError, match="tag must be pinned"):
        _run(rtbuild_pm, fake_builder, context)
    assert fake_builder.calls == []


def test_pre_build_removing_every_tag_is_an_error(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    class Clear:
        @hookimpl
        def pre_build(self, request: BuildRequest) -> None:
            request.tags.clear()

    rtbuild_pm.register(Clear())
    with pytest.raises(AgentRuntimeBuildError, match="at least one tag"):
        _run(rtbuild_pm, fake_builder, context)


def test_build_first_result_wins_and_skips_the_builder(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    class Cache:
        @hookimpl
        def build(self, request: BuildRequest, builder: FakeBuilder) -> BuildResult:
            return BuildResult("registry.invalid/img@sha256:abc", list(request.tags), builder.name, 0.0, cached=True)

    rtbuild_pm.register(Cache())
    result = _run(rtbuild_pm, fake_builder, context)
    assert fake_builder.calls == []
    assert result.image == "registry.invalid/img@sha256:abc" and result.cached is True


def test_a_magic_cached_key_in_data_means_nothing(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    class Old:
        @hookimpl
        def build(self, request: BuildRequest) -> str:
            request.data["cached"] = True  # v1 habit: rtbuild reads no key of data
            return "img:1"

    rtbuild_pm.register(Old())
    assert _run(rtbuild_pm, fake_builder, context).cached is False


def test_build_returning_none_falls_through_to_the_builder(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    class Observer:
        @hookimpl
        def build(self, request: BuildRequest) -> None:
            request.data["observed"] = True

    rtbuild_pm.register(Observer())
    assert _run(rtbuild_pm, fake_builder, context).image == "img:1"
    assert len(fake_builder.calls) == 1


def test_build_may_return_a_build_result(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    class Remote:
        @hookimpl
        def build(self, request: BuildRequest) -> BuildResult:
            return BuildResult("img:1", list(request.tags), "remote", 0.0, details={"digest": "sha256:1"})

    rtbuild_pm.register(Remote())
    result = _run(rtbuild_pm, fake_builder, context)
    assert result.builder == "remote" and result.details == {"digest": "sha256:1"}


def test_build_wrapper_times_and_retries(rtbuild_pm: RtbuildPluginManager, context: Path) -> None:
    builder = FakeBuilder(fail_with="transient")
    seen: list[str] = []

    class Retry:
        @hookimpl(wrapper=True)
        def build(self, request: BuildRequest, builder: FakeBuilder) -> Generator[None, Any, Any]:
            try:
                return (yield)
            except BuildFailedError:
                seen.append("retry")
                builder.fail_with = None
                return builder.build(request.path, request.tags)

    rtbuild_pm.register(Retry())
    result = run_build(BuildRequest(str(context), tags=["img:1"]), config=Config(), pm=rtbuild_pm, builder=builder)
    assert seen == ["retry"] and result.image == "img:1" and len(builder.calls) == 2


def test_build_returning_garbage_is_a_build_failure(rtbuild_pm: RtbuildPluginManager, context: Path) -> None:
    class Bad(FakeBuilder):
        def build(
            self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
        ) -> str:
            return ""

    with pytest.raises(BuildFailedError, match="instead of an image name"):
        run_build(BuildRequest(str(context), tags=["img:1"]), config=Config(), pm=rtbuild_pm, builder=Bad())


def test_image_exists_chain(rtbuild_pm: RtbuildPluginManager) -> None:
    builder = FakeBuilder(images={"local:1"})

    class Mirror:
        @hookimpl
        def image_exists(self, image_name: str, pull_from_repo: bool) -> bool | None:
            return True if image_name.startswith("mirror/") else None

    rtbuild_pm.register(Mirror())
    assert check_image("mirror/x:1", config=Config(), pm=rtbuild_pm, builder=builder) is True
    assert check_image("local:1", False, config=Config(), pm=rtbuild_pm, builder=builder) is True
    assert check_image("absent:1", config=Config(), pm=rtbuild_pm, builder=builder) is False
    assert [c["image_name"] for c in builder.calls] == ["local:1", "absent:1"]
    assert builder.calls[0]["pull_from_repo"] is False


def test_post_build_runs_once_with_the_result(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    results: list[BuildResult] = []

    class Metrics:
        @hookimpl
        def post_build(self, request: BuildRequest, result: BuildResult, config: ConfigClass) -> None:
            results.append(result)
            result.details["recorded"] = True

    rtbuild_pm.register(Metrics())
    result = _run(rtbuild_pm, fake_builder, context, tags=["img:1", "img:2"])
    assert results == [result]
    assert result.details["recorded"] is True and result.tags == ["img:1", "img:2"]
    assert result.builder == "fake" and result.cached is False and result.duration_s >= 0


def test_post_build_not_called_when_the_build_fails(rtbuild_pm: RtbuildPluginManager, context: Path) -> None:
    called: list[bool] = []

    class Metrics:
        @hookimpl
        def post_build(self) -> None:
            called.append(True)

    rtbuild_pm.register(Metrics())
    with pytest.raises(BuildFailedError):
        run_build(
            BuildRequest(str(context), tags=["i:1"]), config=Config(), pm=rtbuild_pm, builder=FakeBuilder(fail_with="x")
        )
    assert called == []


def test_post_build_sees_push_done(rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path) -> None:
    pushed_before: list[list[str]] = []

    class After:
        @hookimpl
        def post_build(self, result: BuildResult) -> None:
            pushed_before.append(list(fake_builder.pushed))

    rtbuild_pm.register(After())
    result = _run(rtbuild_pm, fake_builder, context, tags=["r/img:1"], push=True)
    assert pushed_before == [["r/img:1"]] and result.details["pushed"] is True


def test_hookimpl_may_take_no_arguments(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    count: list[int] = []

    class Minimal:
        @hookimpl
        def pre_build(self) -> None:
            count.append(1)

    rtbuild_pm.register(Minimal())
    _run(rtbuild_pm, fake_builder, context)
    assert count == [1]


def test_default_plugins_are_registered_and_listed(rtbuild_pm: RtbuildPluginManager) -> None:
    records = {r.name: r for r in rtbuild_pm.listing() if r.kind == "plugin"}
    assert records["rtbuild.dispatch"].status == "loaded"
    assert records["rtbuild.dispatch"].distribution == "rtbuild"
