"""Every hook implementation of a registered plugin, wrapped once so that what it does
wrong names it: an exception it raises (``from: plugin NAME (DIST VERSION)``), a
``sys.exit()``, an answer of the wrong type, a request or result field left unusable.

Wrappers (``@hookimpl(wrapper=True)`` and old-style ``hookwrapper=True``) are generators
around the others and get the same checks, on what they do themselves: an exception they
raise (not one of the inner implementations passing through), a result they replace (or
force), a request field they change before or after their ``yield``. Old-style ones run as
new-style ones: pluggy's runner for them warned of an exception raised after the ``yield``
with its text as raised, a secret in it unmasked on stderr. Unwrapped, a wrapper's error
named nobody ("report it"), its ``sys.exit(5)`` ended rtbuild with status 5 and no word,
its ``image_exists`` answer ``"no"`` read as available (exit 0), and its request change
was blamed on the next plugin to run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any

import pluggy

from rtbuild._framework.plugins import _requestcheck
from rtbuild._framework.plugins._trace import (
    blame,
    check_build_result,
    check_exists_answer,
    check_result_fields,
    exited,
    result_fields,
)
from rtbuild.errors import PluginError


def wrap_impls(pm: pluggy.PluginManager, plugin: object, name: str, origin: str | None) -> None:
    """Wrap ``plugin``'s hook implementations so errors name it (``origin``: blame text)."""
    for caller in pm.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            # pluggy calls impl.function(*args); the wrapper keeps its argument list.
            if impl.hookwrapper and origin:
                # Run as a new-style wrapper: pluggy's old-style runner warns of an exception
                # the teardown raises with its text as raised (a secret in it unmasked).
                old = _new_style(impl.function, caller.name, origin)
                impl.function = _wrapped_wrapper(old, caller.name, origin)  # type: ignore[misc]
                impl.hookwrapper, impl.wrapper = False, True  # type: ignore[misc]
            elif impl.wrapper and origin:  # the core's own wrappers are trusted
                impl.function = _wrapped_wrapper(impl.function, caller.name, origin)  # type: ignore[misc]
            elif not (impl.hookwrapper or impl.wrapper):
                impl.function = _wrapped(impl.function, caller.name, name, origin)  # type: ignore[misc]


def _check_answer(hook: str, answer: object, origin: str) -> None:
    if hook == "build":
        check_build_result(answer, origin)
    elif hook == "image_exists":
        check_exists_answer(answer, origin)


def _wrapped(function: Callable[..., Any], hook: str, name: str, origin: str | None) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any) -> Any:
        request = _requestcheck.find_request(args) if hook == "pre_build" and origin else None
        before = _requestcheck.snapshot(request) if request is not None else None
        kept = result_fields(args) if hook == "post_build" and origin else None
        try:
            result = function(*args)
        except SystemExit as exc:
            raise exited(exc, origin or f"plugin {name}", f"its {hook} hook") from exc
        except BaseException as exc:
            blame(exc, origin, impl=f"{hook} in {origin or name}")
            raise
        if origin:
            _check_answer(hook, result, origin)
            if request is not None and before is not None:
                _requestcheck.check_changes(request, before, origin)
            elif kept is not None:
                check_result_fields(kept, origin)
        return result

    return call


def _new_style(function: Callable[..., Any], hook: str, origin: str) -> Callable[..., Any]:
    """An old-style ``hookwrapper=True`` generator as a new-style one: it is sent a
    :class:`pluggy.Result` and may ``force_result`` / ``force_exception``; what the result
    then holds is returned (or raised), as pluggy's own runner does."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Generator[None, Any, Any]:
        gen = function(*args, **kwargs)
        try:
            next(gen)
        except StopIteration:
            raise _misuse(origin, hook, "returned without yielding") from None
        try:
            outcome: pluggy.Result[Any] = pluggy.Result((yield), None)
        except BaseException as exc:
            outcome = pluggy.Result(None, exc)
        try:
            gen.send(outcome)
        except StopIteration:
            pass
        else:
            gen.close()
            raise _misuse(origin, hook, "yields more than once")
        return outcome.get_result()

    return call


def _misuse(origin: str, hook: str, what: str) -> PluginError:
    return PluginError(
        f"{origin}: its {hook} wrapper {what}",
        step=f"{hook} hook",
        hint="a wrapper yields exactly once: `result = yield` gives the other implementations' result"
        " (docs/hooks.md, Wrappers); report it to the plugin's authors or disable the plugin",
        blame=origin,
    )


def _wrapped_wrapper(function: Callable[..., Any], hook: str, origin: str) -> Callable[..., Any]:
    impl = f"{hook} in {origin}"

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Generator[None, Any, Any]:
        request = _requestcheck.find_request(args) if hook == "pre_build" else None
        before = _requestcheck.snapshot(request) if request is not None else None
        gen = function(*args, **kwargs)
        try:
            next(gen)
        except StopIteration:
            raise _misuse(origin, hook, "returned without yielding") from None
        except SystemExit as exc:
            raise exited(exc, origin, f"its {hook} hook") from exc
        except BaseException as exc:
            blame(exc, origin, impl=impl)
            raise
        if request is not None and before is not None:  # what it changed before its yield
            _requestcheck.check_changes(request, before, origin)
        thrown: BaseException | None = None
        try:
            inner = yield
        except BaseException as exc:  # an inner implementation's error (or Ctrl-C)
            thrown = inner = exc
        before = _requestcheck.snapshot(request) if request is not None else None
        kept = result_fields(args) if hook == "post_build" else None
        try:
            if thrown is not None:
                gen.throw(thrown)
            else:
                gen.send(inner)
        except StopIteration as stop:
            answer = stop.value
        except SystemExit as exc:
            if exc is thrown:
                raise
            raise exited(exc, origin, f"its {hook} hook") from exc
        except BaseException as exc:
            if exc is not thrown:  # its own error, not an inner one passing through
                blame(exc, origin, impl=impl)
            raise
        else:
            gen.close()
            raise _misuse(origin, hook, "yields more than once")
        if answer is not inner:  # it replaced the inner result
            _check_answer(hook, answer, origin)
        if request is not None and before is not None:  # what it changed after its yield
            _requestcheck.check_changes(request, before, origin)
        if kept is not None:
            check_result_fields(kept, origin)
        return answer

    return call


__all__ = ["wrap_impls"]
