"""Who did it: blame for hook and builder errors, and the ``--trace-hooks`` tracer.

An exception is tagged with the plugin (and distribution) it came from, so the CLI prints
``from: ...`` and the tracer says which implementation raised; the checks here turn a hook's
answer of the wrong type (a ``build`` hook returning something other than an image name or
a :class:`~rtbuild.BuildResult`, ...) into an error blamed on it. ``_wrapping`` applies
them to every implementation of a registered plugin.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import pluggy

from rtbuild.errors import AgentRuntimeBuildError, PluginError

if TYPE_CHECKING:
    from rtbuild.builder import RuntimeBuilder

#: Attribute set on any exception: the plugin or builder it came from (CLI: ``from: ...``).
BLAME_ATTR = "rtbuild_blame"
#: Attribute set on any exception: the hook implementation that raised it (``--trace-hooks``).
IMPL_ATTR = "rtbuild_impl"


def blame(exc: BaseException, origin: str | None, impl: str | None = None) -> None:
    """Tag ``exc`` with where it came from, unless something closer to it already did."""
    if origin:
        if isinstance(exc, AgentRuntimeBuildError):
            if exc.blame is None:
                exc.blame = origin
        elif getattr(exc, BLAME_ATTR, None) is None:
            with contextlib.suppress(AttributeError):  # an exception type without __dict__
                setattr(exc, BLAME_ATTR, origin)
    if impl and getattr(exc, IMPL_ATTR, None) is None:
        with contextlib.suppress(AttributeError):
            setattr(exc, IMPL_ATTR, impl)


def blamed_on(exc: BaseException) -> str | None:
    """Who an exception is blamed on, if anyone."""
    if isinstance(exc, AgentRuntimeBuildError) and exc.blame:
        return exc.blame
    value = getattr(exc, BLAME_ATTR, None)
    return value if isinstance(value, str) else None


def failed_step(exc: BaseException) -> str | None:
    """The hook an unexpected exception came out of, as an error's step (``pre_build hook``;
    a builder's method by name: ``build``), or ``None`` when no implementation was seen."""
    where = getattr(exc, IMPL_ATTR, None)
    if not isinstance(where, str) or " in " not in where:
        return None
    hook, origin = where.split(" in ", 1)
    return hook if origin.startswith("builder ") else f"{hook} hook"


def builder_origin(builder: RuntimeBuilder) -> str:
    """``builder NAME (DISTRIBUTION VERSION)`` as the factory recorded it."""
    origin = getattr(builder, "_rtbuild_origin", None)
    return origin if isinstance(origin, str) else f"builder {builder.name or type(builder).__name__}"


def exited(
    exc: SystemExit, origin: str, where: str, error: type[AgentRuntimeBuildError] = PluginError
) -> AgentRuntimeBuildError:
    """A ``sys.exit()`` in a hook or a builder method, as an error naming who called it:
    it would end rtbuild with an exit code of its own and no word about why."""
    code = exc.code
    detail = f": {code}" if isinstance(code, str) else f" with status {code}" if code is not None else ""
    return error(
        f"{origin} called sys.exit() in {where}{detail}",
        step=where.removeprefix("its "),
        hint="a plugin or builder stops a build by raising an rtbuild error (rtbuild.errors), never with"
        " sys.exit(); report it to its authors",
        blame=origin,
    )


def check_exists_answer(answer: object, origin: str) -> None:
    if answer is None or isinstance(answer, bool):
        return
    # "no" or "absent" would read as available: an image taken for present is never built.
    raise PluginError(
        f"{origin}: its image_exists hook returned {answer!r} instead of True, False or None",
        step="image_exists hook",
        hint="an image_exists hook returns True or False, or None to let the next one answer",
        blame=origin,
    )


def check_build_result(result: object, origin: str) -> None:
    from rtbuild.builder import BuildResult  # loaded by every build already; not by listing plugins

    if result is None or isinstance(result, BuildResult) or (isinstance(result, str) and result):
        return
    raise PluginError(
        f"{origin}: its build hook returned {result!r} instead of an image name, a BuildResult or None",
        step="build hook",
        hint="a build hook returns the final name:tag, a rtbuild.BuildResult, or None to let the next one build",
        blame=origin,
    )


#: What a post_build hook must leave as it found (stdout prints the image; JSON dumps the rest).
_RESULT_FIELDS: dict[str, type] = {"image": str, "tags": list, "builder": str, "cached": bool, "details": dict}


def result_fields(args: tuple[Any, ...]) -> tuple[Any, dict[str, Any]] | None:
    from rtbuild.builder import BuildResult

    result = next((arg for arg in args if isinstance(arg, BuildResult)), None)
    return None if result is None else (result, {name: getattr(result, name) for name in _RESULT_FIELDS})


def check_result_fields(kept: tuple[Any, dict[str, Any]], origin: str) -> None:
    """After a ``post_build`` implementation: a field it gave another type is put back and
    the plugin named (``result.image = 5`` made stdout print ``5``)."""
    result, before = kept
    for name, kind in _RESULT_FIELDS.items():
        value = getattr(result, name)
        if isinstance(value, kind) and (name != "tags" or all(isinstance(tag, str) for tag in result.tags)):
            continue
        for field_name, old in before.items():
            setattr(result, field_name, old)
        raise PluginError(
            f"{origin}: its post_build hook set BuildResult.{name} to a {type(value).__name__}",
            step="post_build",
            hint="post_build may add to result.details; image, tags, builder and cached keep their types",
            blame=origin,
        )


class HookTracer:
    """Prints each hook call with its plugins and duration (``RTBUILD_TRACE_HOOKS=1``)."""

    def __init__(self, pm: pluggy.PluginManager, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._starts: list[float] = []
        self._undo = pm.add_hookcall_monitoring(self._before, self._after)

    def _write(self, text: str) -> None:
        print(text, file=self._stream or sys.stderr)

    def _before(self, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        self._starts.append(time.perf_counter())
        names = ", ".join(impl.plugin_name for impl in reversed(impls)) or "(no plugins)"
        self._write(f"rtbuild trace: {hook_name} -> [{names}]")

    def _after(
        self, outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        elapsed_ms = (time.perf_counter() - self._starts.pop()) * 1000
        status = "ok"
        if outcome.exception:
            status = "raised " + type(outcome.exception).__name__
            where = getattr(outcome.exception, IMPL_ATTR, None)
            if where:
                status += f" (from {where})"
        self._write(f"rtbuild trace: {hook_name} {status} in {elapsed_ms:.1f} ms")

    def undo(self) -> None:
        self._undo()


__all__ = [
    "BLAME_ATTR",
    "IMPL_ATTR",
    "HookTracer",
    "blame",
    "blamed_on",
    "builder_origin",
    "check_build_result",
    "check_exists_answer",
    "check_result_fields",
    "exited",
    "failed_step",
    "result_fields",
]
