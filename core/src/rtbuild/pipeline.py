"""The one place that runs a build, from request to result. Read it top to bottom:

CLI/API -> Config -> PluginManager -> BuildRequest -> pre_build hooks -> validate context
-> build hook (first result wins; the default dispatches to the builder) -> push ->
post_build hooks -> BuildResult
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .builder import BuildRequest, BuildResult, RuntimeBuilder
from .config import Config, load_config
from .context import validate_context
from .errors import AgentRuntimeBuildError, BuildFailedError, PushError
from .locks import build_lock
from .progress import get_reporter

if TYPE_CHECKING:
    from .plugins import RtbuildPluginManager


def _apply_config_defaults(request: BuildRequest, config: Config) -> None:
    """Configured values fill what the request leaves open; the request wins."""
    request.builder = request.builder or config.builder
    request.platform = request.platform or config.platform
    request.push = request.push or config.push
    request.build_args = {**config.sandbox.build_args, **config.build_args, **request.build_args}
    request.labels = {**config.labels, **request.labels}


def _as_result(
    outcome: str | BuildResult, request: BuildRequest, builder: RuntimeBuilder, started: float
) -> BuildResult:
    if isinstance(outcome, BuildResult):
        outcome.duration_s = outcome.duration_s or round(time.perf_counter() - started, 3)
        return outcome
    if not isinstance(outcome, str) or not outcome:
        raise BuildFailedError(
            f"builder {builder.name!r} returned {outcome!r} instead of an image name",
            step="build",
            hint="RuntimeBuilder.build must return the final name:tag",
        )
    return BuildResult(
        image=outcome,
        tags=list(request.tags),
        builder=builder.name or type(builder).__name__,
        duration_s=round(time.perf_counter() - started, 3),
        cached=bool(request.data.get("cached", False)),
    )


def _push(request: BuildRequest, result: BuildResult, builder: RuntimeBuilder) -> None:
    if result.details.get("pushed"):
        return
    push = getattr(builder, "push", None)
    if push is None:
        raise PushError(
            f"builder {builder.name!r} cannot push images",
            step="push",
            hint="push with a plugin's post_build hook, or choose a builder that supports --push",
        )
    for tag in result.tags or [result.image]:
        push(tag)
    result.details["pushed"] = True


def run_build(
    request: BuildRequest,
    *,
    config: Config | None = None,
    pm: RtbuildPluginManager | None = None,
    builder: RuntimeBuilder | None = None,
) -> BuildResult:
    """Run ``request`` through the hooks and the selected builder; return the result."""
    from .plugins import get_plugin_manager

    started = time.perf_counter()
    config = config or load_config()
    pm = pm or get_plugin_manager(config)
    _apply_config_defaults(request, config)
    reporter = get_reporter()

    pm.hook.pre_build(request=request, config=config)
    if not request.tags:
        raise AgentRuntimeBuildError("a build needs at least one tag", step="validate request", hint="pass -t NAME:TAG")
    validate_context(request.path, request.extra_build_args)
    builder = builder or pm.create_builder(request.builder or config.builder, config)

    # One build per tag at a time, across threads and processes: a waiter then runs the
    # build hook itself and gets the backend's no-op skip instead of a second build.
    def on_wait(message: str) -> None:
        reporter.event("waiting", tags=request.tags, message=message)

    with build_lock(request.tags, on_wait=on_wait):
        # A caller that already knows the image exists (runtime exact hit) sets data["cached"].
        verb = "reusing" if request.data.get("cached") else "building"
        reporter.event("build_started", builder=builder.name, tags=request.tags, message=f"{verb} {request.tags[0]}")
        outcome = pm.hook.build(request=request, builder=builder, config=config)
        if outcome is None:
            raise BuildFailedError("no plugin performed the build", step="build")
        result = _as_result(outcome, request, builder, started)
        if request.push:
            _push(request, result, builder)
    pm.hook.post_build(request=request, result=result, config=config, builder=builder)
    result.duration_s = round(time.perf_counter() - started, 3)
    reporter.event(
        "build_finished",
        image=result.image,
        cached=result.cached,
        duration_s=result.duration_s,
        message=f"{'reused' if result.cached else 'built'} {result.image} in {result.duration_s:.2f}s",
    )
    return result


def check_image(
    image_name: str,
    pull_from_repo: bool = True,
    *,
    config: Config | None = None,
    pm: RtbuildPluginManager | None = None,
    builder: RuntimeBuilder | None = None,
) -> bool:
    """Whether ``image_name`` is available, through the ``image_exists`` hook chain."""
    from .plugins import get_plugin_manager

    config = config or load_config()
    pm = pm or get_plugin_manager(config)
    builder = builder or pm.create_builder(config.builder, config)
    answer = pm.hook.image_exists(image_name=image_name, pull_from_repo=pull_from_repo, builder=builder, config=config)
    return bool(answer)


__all__ = ["check_image", "run_build"]
