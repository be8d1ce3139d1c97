"""Dispatch ``build`` and ``image_exists`` to the selected builder (called last)."""

from __future__ import annotations

import contextlib
import weakref
from typing import TYPE_CHECKING, Any

from rtbuild._framework.plugins._trace import blame, builder_origin, exited
from rtbuild.errors import ConfigError
from rtbuild.markers import hookimpl

if TYPE_CHECKING:
    # Only annotations here: `rtbuild plugins` registers this module without the builder API.
    from rtbuild.builder import BuildRequest, BuildResult, RuntimeBuilder


@hookimpl(trylast=True)
def build(request: BuildRequest, builder: RuntimeBuilder) -> BuildResult:
    # The structured entry point: v2 builders override it, the base class adapts it to
    # a v1 ``build()`` with every field as a flag. Plugin filtering never changes this.
    from rtbuild.builder import BuildResult

    try:
        result = builder.build_request(request)
    except SystemExit as exc:  # a builder ported from a script: the build failed, say whose
        from rtbuild.errors import BuildFailedError

        raise exited(exc, builder_origin(builder), "build", BuildFailedError) from exc
    except BaseException as exc:
        blame(exc, builder_origin(builder), impl=f"build in {builder_origin(builder)}")
        raise
    if not isinstance(result, BuildResult):
        raise _returned(builder, "build_request", result, "a rtbuild.BuildResult", "build", "must return a BuildResult")
    return result


def _returned(builder: RuntimeBuilder, method: str, value: object, wanted: str, step: str, rule: str) -> Exception:
    """The error for a builder method that returned something other than the contract says."""
    from rtbuild.errors import PluginError

    origin = builder_origin(builder)
    return PluginError(
        f"{origin}: {method} returned {value!r} instead of {wanted}",
        step=step,
        hint=f"RuntimeBuilder.{method} {rule}; report it to the builder's authors",
        blame=origin,
    )


@hookimpl(trylast=True)
def image_exists(image_name: str, pull_from_repo: bool, builder: RuntimeBuilder, platform: str | None) -> bool:
    try:
        if platform:
            # ``platform`` is an optional keyword of v2 builders' image_exists, not part of the
            # abstract signature: a builder that cannot tell platforms apart must say so, not
            # answer for another platform.
            if not takes_platform(builder):
                raise ConfigError(
                    f"builder {builder.name or type(builder).__name__!r} cannot check an image for a platform",
                    step="check image",
                    hint="drop --platform, or choose a builder whose image_exists takes platform= (docker, podman)",
                )
            answer = builder.image_exists(image_name, pull_from_repo=pull_from_repo, platform=platform)  # type: ignore[call-arg]
        else:
            answer = builder.image_exists(image_name, pull_from_repo=pull_from_repo)
    except SystemExit as exc:
        raise exited(exc, builder_origin(builder), "image_exists") from exc
    except BaseException as exc:
        blame(exc, builder_origin(builder), impl=f"image_exists in {builder_origin(builder)}")
        raise
    if not isinstance(answer, bool):
        # "no" or "absent" would read as available, and an image taken for present is never built.
        raise _returned(builder, "image_exists", answer, "True or False", "check image", "must return a bool")
    return answer


def takes_platform(builder: RuntimeBuilder) -> bool:
    method = builder.image_exists
    # One signature per implementing function: asked on every image check, and
    # inspect.signature costs about as much as the rest of a cached check's Python.
    function = getattr(method, "__func__", method)
    try:
        return _TAKES_PLATFORM[function]
    except (KeyError, TypeError):  # TypeError: an unhashable callable
        pass
    import inspect

    try:
        answer = "platform" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        answer = False
    with contextlib.suppress(TypeError):
        _TAKES_PLATFORM[function] = answer
    return answer


_TAKES_PLATFORM: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
