"""The one place that runs a build, from request to result. Read it top to bottom:

CLI/API -> Config -> PluginManager -> BuildRequest -> pre_build hooks -> validate context
-> build hook (first result wins; the default dispatches to the builder) -> push ->
post_build hooks -> BuildResult
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rtbuild._framework.config import Config, load_config
from rtbuild._framework.deadline import build_deadline
from rtbuild._framework.iidfile import check_iidfile, write_iidfile
from rtbuild._framework.locks import build_lock
from rtbuild._framework.outputmask import mask_error, masked_output, request_redactor, warn_secrets_in_context
from rtbuild._framework.progress import get_reporter
from rtbuild._framework.reporterguard import guarded_reporter
from rtbuild.builder import BuildRequest, BuildResult, RuntimeBuilder
from rtbuild.context._validate import check_has_from, check_target, validate_context, validate_context_dir
from rtbuild.enginekit._skip import build_args_in
from rtbuild.errors import (
    AgentRuntimeBuildError,
    BuildFailedError,
    CapabilityError,
    ConfigError,
    PolicyError,
    PostBuildError,
    PushError,
)

if TYPE_CHECKING:
    from rtbuild._framework.plugins import RtbuildPluginManager


def _apply_config_defaults(request: BuildRequest, config: Config) -> None:
    """Configured values fill what the request leaves open; the request wins."""
    request.builder = request.builder or config.builder
    request.platform = request.platform or config.platform
    if request.push is None:  # an explicit False wins over `push = true` in the config
        request.push = config.push
    request.build_args = {**config.sandbox.build_args, **config.build_args, **request.build_args}
    request.labels = {**config.labels, **request.labels}


def _as_result(outcome: object, request: BuildRequest, builder: RuntimeBuilder, started: float) -> BuildResult:
    """A ``build`` hook's outcome as a result (a plugin may return the image name only)."""
    if isinstance(outcome, BuildResult):
        outcome.duration_s = outcome.duration_s or round(time.perf_counter() - started, 3)
        return outcome
    if not isinstance(outcome, str) or not outcome:
        # The plugins' own returns are checked where they happen (plugins/_trace.py, with
        # blame); this is the last line for a manager built without that check.
        raise BuildFailedError(
            f"the build hook returned {outcome!r} instead of an image name or a BuildResult",
            step="build",
            hint="a build hook returns the final name:tag, a rtbuild.BuildResult, or None",
        )
    return BuildResult(
        image=outcome,
        tags=list(request.tags),
        builder=builder.name or type(builder).__name__,
        duration_s=round(time.perf_counter() - started, 3),
    )


def _can_push(builder: RuntimeBuilder) -> bool:
    # A v1 builder that defines push() without declaring it still pushes.
    return builder.capabilities.push or type(builder).push is not RuntimeBuilder.push


def validate_request(request: BuildRequest) -> None:
    """Tags, platforms and the path (``-x`` is ``./-x``: a CLI took it for an option), for every builder."""
    request.path = f"./{request.path}" if request.path.startswith("-") else request.path
    from rtbuild.oci._references import parse_tag

    if not request.tags:
        raise ConfigError("a build needs at least one tag", step="validate request", hint="pass -t NAME:TAG")
    for tag in request.tags:
        parse_tag(tag)
    # One spelling per tag (the first given): a repeat, or another spelling of the same
    # tag (app:1, docker.io/library/app:1), was tagged and pushed once per spelling.
    from rtbuild._framework.locks import normalize_tag

    spellings: dict[str, str] = {}
    for tag in request.tags:
        spellings.setdefault(normalize_tag(tag), tag)
    request.tags = list(spellings.values())
    request.platform = validate_platform(request.platform)


def validate_platform(platform: str | None, step: str = "validate request") -> str | None:
    """``os/arch[/variant]``, or several joined by commas; ``None`` is the native one.

    Returns one spelling per platform, as the engines read them (case, arm64/v8, spaces, the
    same one twice): a repeat reached the engine verbatim as one invalid platform, and an
    ``image_exists`` hook was handed ``Linux/ARM64/v8`` for ``exists`` (``build`` gave it
    ``linux/arm64``)."""
    given = platform.split(",") if platform else []
    for one in [p.strip() or p for p in given]:
        parts = one.split("/")
        if not 2 <= len(parts) <= 3 or not all(p and p.replace("_", "").isalnum() for p in parts):
            raise ConfigError(
                f"invalid platform {one!r}: expected os/arch[/variant]",
                step=step,
                hint="e.g. --platform linux/amd64 or --platform linux/amd64,linux/arm64",
            )
    if not platform:
        return platform
    from rtbuild.oci import normalize_platform

    return ",".join(dict.fromkeys(normalize_platform(p) for p in platform.split(",")))


def check_capabilities(request: BuildRequest, builder: RuntimeBuilder) -> None:
    """Refuse, before any work, what the builder declares it cannot do (exit 2)."""
    caps = builder.capabilities
    asked = {
        "push": bool(request.push) and not _can_push(builder),
        "target": bool(request.target) and not caps.target,
        "no_cache": request.no_cache and not caps.no_cache,
        "secrets": bool(request.secrets) and not caps.secrets,
        "cache_export": bool(request.cache_from or request.cache_to) and not caps.cache_export,
        "multi_platform": len(request.platforms()) > 1 and not caps.multi_platform,
    }
    missing = [name for name, refused in asked.items() if refused]
    if caps.platforms:
        missing += [f"platform {p}" for p in request.platforms() if p not in caps.platforms]
    if missing:
        raise CapabilityError(
            f"builder {builder.name!r} cannot do what this build asks: {', '.join(missing)}",
            step="check builder capabilities",
            hint=f"run `rtbuild builders` to see what each installed builder supports, or drop {missing[0]!r}",
        )


def _push(request: BuildRequest, result: BuildResult, builder: RuntimeBuilder) -> None:
    if result.details.get("pushed"):
        return
    from rtbuild._framework.interrupts import cancelled
    from rtbuild._framework.plugins._trace import blame, builder_origin
    from rtbuild._framework.pushonce import image_to_push, pushed_already, record_push

    for tag in result.tags or [result.image]:
        if cancelled():  # build-many's Ctrl-C came after the build: no push starts
            raise PushError(
                f"{result.image} was built, and not pushed: stopped by the interrupt (Ctrl-C or SIGTERM)"
                f" before the push of {tag}",
                step="push",
                hint="run again: the image built is reused and pushed",
            )
        image_id = image_to_push(tag, builder)  # build-many: entries sharing a tag push it once
        if pushed_already(tag, image_id):
            get_reporter().event("push_skipped", image=tag, message=f"{tag}: pushed already by this batch (same image)")
            continue
        try:
            builder.push(tag)
        except BaseException as exc:
            blame(exc, builder_origin(builder))
            raise
        record_push(tag, image_id)
    result.details["pushed"] = True


def _prepare(
    request: BuildRequest,
    config: Config,
    pm: RtbuildPluginManager,
    builder: RuntimeBuilder | None,
    created: list[RuntimeBuilder],
) -> RuntimeBuilder:
    """pre_build, then the builder, its capabilities and the context: all before any work."""
    from rtbuild._framework.plugins._requestcheck import SET_BY_ATTR, blaming
    from rtbuild.enginekit._labelsecrets import refuse_label_credentials
    from rtbuild.errors import BuilderNotFoundError

    vars(request).pop(SET_BY_ATTR, None)  # who set what: this run's pre_build hooks only
    pm.hook.pre_build(request=request, config=config)
    # pre_build hooks may have changed it: an error names the plugin that set the value.
    with blaming(request, "tags", "platform"):
        validate_request(request)
    with blaming(request, "labels", "extra_build_args"):
        refuse_label_credentials(request.labels, request.extra_build_args)
    with blaming(request, "builder", only=BuilderNotFoundError):
        builder = builder or pm.create_builder(request.builder or config.builder, config)
    created.append(builder)
    check_capabilities(request, builder)
    if builder.capabilities.needs_dockerfile:
        with blaming(request, "path", "dockerfile", "extra_build_args"):
            dockerfile = validate_context(
                request.path, [*(["-f", request.dockerfile] if request.dockerfile else []), *request.extra_build_args]
            )
        with blaming(request, "path", "dockerfile", "extra_build_args"):
            check_has_from(dockerfile, {**request.build_args, **build_args_in(request.extra_build_args)})
        if request.target:
            with blaming(request, "target"):
                check_target(dockerfile, request.target, request.build_args)
    else:
        with blaming(request, "path"):
            validate_context_dir(request.path)
    return builder


def plan_build(
    request: BuildRequest,
    *,
    config: Config | None = None,
    pm: RtbuildPluginManager | None = None,
    builder: RuntimeBuilder | None = None,
) -> str:
    """What :func:`run_build` would do (``rtbuild build --dry-run``): the builder's plan.

    Validation, ``pre_build`` hooks and the capability check run as for a build; nothing is
    built or pushed and neither ``post_build`` nor ``build_failed`` is called.
    """
    from rtbuild._framework.plugins import get_plugin_manager

    config = config or load_config()
    pm = pm or get_plugin_manager(config)
    _apply_config_defaults(request, config)
    validate_request(request)
    from rtbuild._framework.outputmask import errors_masked
    from rtbuild._framework.plugins._trace import blame, builder_origin

    with errors_masked(request), masked_output(request):  # a hook's or the builder's message may quote a secret
        builder = _prepare(request, config, pm, builder, [])
        if not builder.capabilities.dry_run:
            raise CapabilityError(
                f"builder {builder.name!r} cannot describe a build without running it (no dry run)",
                step="check builder capabilities",
            )
        try:
            plan = request_redactor(request)(builder.plan(request))
        except BaseException as exc:  # named as a build's errors are: the builder refused it
            blame(exc, builder_origin(builder))
            raise
    if request.push:
        plan += "\n" + "\n".join(f"# then push {tag}" for tag in request.tags)
    return plan


def _run_hooks(
    request: BuildRequest,
    config: Config,
    pm: RtbuildPluginManager,
    builder: RuntimeBuilder | None,
    created: list[RuntimeBuilder],
    started: float,
) -> BuildResult:
    """pre_build -> builder -> context check -> locked build (+ push) -> post_build."""
    reporter = get_reporter()
    builder = _prepare(request, config, pm, builder, created)
    for secret in request.secrets:
        secret.value()  # a missing one is the user's to fix, not the builder's: say so before any work
    warn_secrets_in_context(request)
    iidfile = check_iidfile(request)

    # One build per tag at a time, across threads and processes: a waiter then runs the
    # build hook itself and gets the backend's no-op skip instead of a second build.
    def on_wait(message: str) -> None:
        reporter.event("waiting", tags=request.tags, message=message)

    # Whatever the builder and the hooks report or raise, with secret values masked (after
    # pre_build, which may add build args): a builder written from the scaffold does not mask.
    with masked_output(request) as redactor:
        with build_lock(request.tags, on_wait=on_wait, timeout=config.lock_timeout):
            message = f"building {request.tags[0]}"
            reporter.event("build_started", builder=builder.name, tags=request.tags, message=message)
            with build_deadline(config.build_timeout):
                outcome = pm.hook.build(request=request, builder=builder, config=config)
            if outcome is None:
                raise BuildFailedError(
                    "no plugin performed the build",
                    step="build",
                    hint="every build hook returned None: `rtbuild plugins` and `--trace-hooks` show which plugins ran",
                )
            result = _as_result(outcome, request, builder, started)
            result.details = redactor.mask(result.details)
            if iidfile is not None:
                write_iidfile(iidfile, result)
            if request.push:
                _push(request, result, builder)
        try:
            pm.hook.post_build(request=request, result=result, config=config, builder=builder)
        except PolicyError:
            raise  # a refusal (e.g. a vulnerability policy): the image must not be used, exit 2
        except Exception as exc:  # the image exists (and was pushed): say so, and who failed after
            raise _post_build_error(exc, result) from exc
    result.details = redactor.mask(result.details)  # what post_build hooks added (a scan's, a plugin's note)
    return result


def _post_build_error(exc: Exception, result: BuildResult) -> PostBuildError:
    from rtbuild._framework.plugins._trace import blamed_on

    what = "reused" if result.cached else "built"
    pushed = " and pushed" if result.details.get("pushed") else ""
    detail = exc.message if isinstance(exc, AgentRuntimeBuildError) else f"{type(exc).__name__}: {exc}"
    return PostBuildError(
        f"{result.image} was {what}{pushed}, then a post_build hook failed: {detail}",
        step=(exc.step if isinstance(exc, AgentRuntimeBuildError) else None) or "post_build",
        blame=blamed_on(exc),
        log_tail=exc.log_tail if isinstance(exc, AgentRuntimeBuildError) else None,
        # The plugin's own hint says what to fix (a full disk, a directory to set): kept.
        hint=f"the image is usable; {own}; or disable the plugin named above (--no-plugins, disable_plugins)"
        if isinstance(exc, AgentRuntimeBuildError) and (own := (exc.hint or "").strip().rstrip("."))
        else "the image is usable; fix or disable the plugin named above (--no-plugins, disable_plugins)",
        result=result.to_dict(),
    )


def _report_failure(
    pm: RtbuildPluginManager,
    request: BuildRequest,
    error: Exception,
    config: Config,
    builder: RuntimeBuilder | None,
    started: float,
) -> None:
    """The ``build_failed`` hooks; their own failures never hide the build's error."""
    import warnings

    duration_s = round(time.perf_counter() - started, 3)
    try:
        pm.hook.build_failed(request=request, error=error, config=config, builder=builder, duration_s=duration_s)
    except Exception as exc:  # a recording plugin must not replace the real error
        mask_error(exc, request_redactor(request))  # it may quote the request (a webhook's URL, a build arg)
        warnings.warn(f"a build_failed hook raised {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
    except BaseException:  # Ctrl-C in a hook that hangs (a webhook): the interrupt wins, the error is said
        get_reporter().event("warning", message=f"interrupted while build_failed hooks ran; the build failed: {error}")
        raise


def run_build(
    request: BuildRequest,
    *,
    config: Config | None = None,
    pm: RtbuildPluginManager | None = None,
    builder: RuntimeBuilder | None = None,
) -> BuildResult:
    """Run ``request`` through the hooks and the selected builder; return the result."""
    from rtbuild._framework.plugins import get_plugin_manager

    started = time.perf_counter()
    config = config or load_config()
    pm = pm or get_plugin_manager(config)
    _apply_config_defaults(request, config)

    from rtbuild._framework.plugins._requestcheck import check_request

    check_request(request)  # the caller's own field types, before any hook sees them
    validate_request(request)
    created: list[RuntimeBuilder] = []
    with masked_output(request):  # pre_build and build_failed hooks report too (the request as given)
        try:
            with guarded_reporter() as reporter:  # a reporter that raises is named, not the builder
                result = _run_hooks(request, config, pm, builder, created, started)
                result.duration_s = round(time.perf_counter() - started, 3)
                reporter.event(
                    "build_finished",
                    image=result.image,
                    cached=result.cached,
                    duration_s=result.duration_s,
                    message=f"{'reused' if result.cached else 'built'} {result.image} in {result.duration_s:.2f}s",
                )
        except Exception as exc:
            mask_error(exc, request_redactor(request))  # what failed before the build's own mask began
            _report_failure(pm, request, exc, config, created[0] if created else builder, started)
            raise
    return result


def check_image(
    image_name: str,
    pull_from_repo: bool = True,
    *,
    config: Config | None = None,
    pm: RtbuildPluginManager | None = None,
    builder: RuntimeBuilder | None = None,
    platform: str | None = None,
) -> bool:
    """Whether ``image_name`` is available (for ``platform``, when given), through the
    ``image_exists`` hook chain."""
    from rtbuild._framework.plugins import get_plugin_manager
    from rtbuild.oci._references import parse_reference

    platform = validate_platform(platform, step="check image")  # a typo must not read as "absent"
    parse_reference(image_name)  # the user's typo, not the builder's failure
    config = config or load_config()
    pm = pm or get_plugin_manager(config)
    builder = builder or pm.create_builder(config.builder, config)
    answer = pm.hook.image_exists(
        image_name=image_name, pull_from_repo=pull_from_repo, builder=builder, config=config, platform=platform
    )
    return bool(answer)


__all__ = ["check_capabilities", "check_image", "plan_build", "run_build", "validate_platform", "validate_request"]
