"""The hooks reference's examples, copied from docs/hooks.md and run as written: a user
pastes them, so they must do what the text around them says."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest
from rtbuild import BuildRequest, Config, hookimpl, run_build
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild._framework.progress import PlainReporter, use_reporter
from rtbuild.errors import BuildFailedError
from rtbuild.testing import FakeBuilder

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


def _example(heading: str, contains: str) -> types.ModuleType:
    """The first python block of the ``## `heading...`` section that contains ``contains``,
    as a plugin module."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index(f"## `{heading}") :]
    section = section[: section.find("\n## ", 1)]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if contains in b]
    assert blocks, f"no python example with {contains!r} under {heading}"
    module = types.ModuleType(f"docs_example_{heading}")
    exec(compile(blocks[0], str(DOCS), "exec"), module.__dict__)
    return module


class FailsOnce:
    """A build hook run before the builder that fails the first build, as a flaky mirror would."""

    def __init__(self) -> None:
        self.failed = False

    @hookimpl(tryfirst=True)
    def build(self, request: BuildRequest) -> None:
        if not self.failed:
            self.failed = True
            raise BuildFailedError("network timeout", step="RUN pip install")


def test_the_retrying_build_wrapper_retries_the_same_build(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    rtbuild_pm.register(_example("build(", "wrapper=True"))
    rtbuild_pm.register(FailsOnce())
    request = BuildRequest(str(context), tags=["app:1"], build_args={"A": "B"}, labels={"team": "x"}, target="base")
    (context / "Dockerfile").write_text("FROM scratch AS base\n")
    result = run_build(request, config=Config(), pm=rtbuild_pm, builder=fake_builder)
    assert result.image == "app:1"
    (call,) = [c for c in fake_builder.calls if c["method"] == "build"]
    # The retry must build what was asked: the example retried with path and tags only,
    # dropping build args, labels, target, secrets, -f (a retry building another image).
    assert call["extra_build_args"] == ["--build-arg", "A=B", "--label", "team=x", "--target", "base"]


def test_the_build_failed_example_writes_nothing_to_stdout(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rtbuild_pm.register(_example("build_failed(", "def build_failed"))
    fake_builder.fail_with = "boom"
    with use_reporter(PlainReporter()), pytest.raises(BuildFailedError):
        run_build(BuildRequest(str(context), tags=["app:1"]), config=Config(), pm=rtbuild_pm, builder=fake_builder)
    out, err = capfd.readouterr()
    assert out == ""  # stdout is the caller's result (the hooks page says never print): it printed there
    assert "app:1 failed at fake build: BuildFailedError" in err


def _data_path_stages() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    intro = text.index("The data path, as `rtbuild._framework.pipeline.run_build` runs it")
    diagram = text[intro:].split("```", 2)[1]
    lines = [line for line in diagram.splitlines() if not line.strip().startswith("(")]  # the failure note
    stages = [stage.strip() for stage in " ".join(lines).split("->")]
    return [stage for stage in stages if stage and stage not in ("BuildRequest", "BuildResult")]


def test_the_data_path_is_the_order_run_build_takes(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page once put 'validate context' before 'select builder' (the builder's needs_dockerfile
    # decides how the context is checked) and left out the tag checks around pre_build.
    from rtbuild._framework import pipeline

    seen: list[str] = []

    def spy(stage: str, func: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            seen.append(stage)
            return func(*args, **kwargs)

        return recorded

    monkeypatch.setattr(pipeline, "validate_request", spy("validate tags", pipeline.validate_request))
    monkeypatch.setattr(pipeline, "check_capabilities", spy("check capabilities", pipeline.check_capabilities))
    monkeypatch.setattr(pipeline, "validate_context", spy("validate context", pipeline.validate_context))
    monkeypatch.setattr(pipeline, "_push", spy("push (if asked)", pipeline._push))
    monkeypatch.setattr(rtbuild_pm, "create_builder", spy("select builder", lambda name, config: fake_builder))

    class Hooks:
        @hookimpl(tryfirst=True)
        def pre_build(self) -> None:
            seen.append("pre_build")

        @hookimpl(tryfirst=True)
        def build(self) -> None:
            seen.append("build (first result)")

        @hookimpl
        def post_build(self) -> None:
            seen.append("post_build")

    rtbuild_pm.register(Hooks())
    run_build(BuildRequest(str(context), tags=["app:1"], push=True), config=Config(), pm=rtbuild_pm)
    assert seen == _data_path_stages()


def test_the_pre_build_example_labels_the_build(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path
) -> None:
    rtbuild_pm.register(_example("pre_build(", "@rtbuild.hookimpl"))
    run_build(BuildRequest(str(context), tags=["app:1"]), config=Config(), pm=rtbuild_pm, builder=fake_builder)
    (call,) = [c for c in fake_builder.calls if c["method"] == "build"]
    assert "org.opencontainers.image.vendor=acme" in call["extra_build_args"]


def test_the_image_exists_example_answers_for_its_mirror_only(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder
) -> None:
    from rtbuild import check_image

    rtbuild_pm.register(_example("image_exists(", "@rtbuild.hookimpl"))
    assert check_image("mirror.internal/app:1", config=Config(), pm=rtbuild_pm, builder=fake_builder) is True
    assert check_image("elsewhere/app:1", config=Config(), pm=rtbuild_pm, builder=fake_builder) is False


def test_the_post_build_and_runtime_plugins_examples_run(
    rtbuild_pm: RtbuildPluginManager, fake_builder: FakeBuilder, context: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rtbuild_pm.register(_example("post_build(", "@rtbuild.hookimpl"))
    runtime = _example("runtime_plugins(", "@rtbuild.hookimpl")
    rtbuild_pm.register(runtime)
    with use_reporter(PlainReporter()):
        run_build(BuildRequest(str(context), tags=["app:1"]), config=Config(), pm=rtbuild_pm, builder=fake_builder)
    out, err = capfd.readouterr()
    assert out == "" and "app:1 in " in err and "(cached=False)" in err
    (offered,) = [p for found in rtbuild_pm.hook.runtime_plugins(config=Config()) for p in found]
    assert offered.name == "hello" and offered.requirements(Config()).files == {"/opt/hello.txt": "hi\n"}
