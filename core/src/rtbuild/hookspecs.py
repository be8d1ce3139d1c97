"""The hooks rtbuild calls. One docstring each; docs/hooks.md has a section per hook.

An implementation may accept any subset of a hook's arguments (pluggy passes only the
ones it names), so arguments can be added here without breaking existing plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtbuild.markers import hookspec

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild.builder import BuildRequest, BuildResult, RuntimeBuilder
    from rtbuild.runtime._plugin import RuntimePlugin


@hookspec
def pre_build(request: BuildRequest, config: Config) -> None:
    """Validate or change ``request`` before anything is built.

    Called for every build, in plugin order. Mutate the request in place (tags, build
    args, labels, ``data``); raise an :class:`~rtbuild.AgentRuntimeBuildError` subclass
    to stop the build with a message for the user.
    """


@hookspec(firstresult=True)
def build(request: BuildRequest, builder: RuntimeBuilder, config: Config) -> str | BuildResult | None:
    """Perform the build and return the final ``name:tag`` (or a :class:`~rtbuild.BuildResult`).

    The first non-``None`` result wins. The core's default implementation (registered
    ``trylast``) calls ``builder.build_request(request)``; for a v1 builder that adapts to
    ``builder.build(...)`` with every structured field as a Docker-style flag. A wrapper
    (``wrapper=True``) can time, retry or cache the build around the others. Return a
    ``BuildResult`` with ``cached=True`` when the image was reused rather than built; any
    other kind of value is an error blamed on the plugin that returned it.
    """


@hookspec(firstresult=True)
def image_exists(
    image_name: str, pull_from_repo: bool, builder: RuntimeBuilder, config: Config, platform: str | None
) -> bool | None:
    """Answer whether ``image_name`` is available; the first non-``None`` answer wins.

    ``platform`` (``None``: any; else one or several comma-separated ``os/arch``) must all
    be offered: an index lacking one is absent. The core's default implementation
    (``trylast``) asks ``builder.image_exists``.
    """


@hookspec
def post_build(request: BuildRequest, result: BuildResult, config: Config, builder: RuntimeBuilder) -> None:
    """React to a finished build: scan, record metrics, notify (the push is done by then).

    Called once per successful build (also when the image was reused, with
    ``result.cached`` true), after tags are applied and the image pushed if asked.
    ``builder`` is the builder that ran (or checked) the build, so a hook can ask it
    about the image, e.g. ``builder.inspect_image(image)`` (size, labels; ``None`` when the
    backend cannot tell).
    """


@hookspec
def build_failed(
    request: BuildRequest, error: Exception, config: Config, builder: RuntimeBuilder | None, duration_s: float
) -> None:
    """React to a failed build: record it, notify.

    Called once when a build fails after ``pre_build`` started (a ``pre_build`` refusal,
    the build itself, the push, or a ``post_build`` hook that raised), before the error
    reaches the caller. ``error`` is the exception (usually an
    :class:`~rtbuild.AgentRuntimeBuildError` with ``step``); ``builder`` is ``None`` when
    the failure came before one was created. An exception raised here is reported as a
    warning and the build's own error propagates unchanged.
    """


@hookspec
def runtime_plugins(config: Config) -> list[RuntimePlugin]:
    """Offer runtime plugins; only the ones selected by name contribute to an image.

    Return a list of objects following :class:`~rtbuild.runtime._plugin.RuntimePlugin`
    (``name``, ``order``, ``requirements(config)``). Every implementation's lists are
    concatenated; two plugins offering the same name is an error. ``requirements`` is
    called only for the plugins the user selected, so an installed but unselected
    plugin never changes an image.
    """
    return []
