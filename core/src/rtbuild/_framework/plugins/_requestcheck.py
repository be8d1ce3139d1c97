"""What a ``pre_build`` hook did to the request: its field types, and who set what.

A ``pre_build`` hook may change any field of the :class:`~rtbuild.BuildRequest`, keeping
its type. One that does not (``request.tags = "app:1"``, ``request.build_args = None``)
used to fail much later, as the builder's internal error or a garbled tag, naming the
builder or nobody. Each implementation's changes are checked as it returns, and an error
names the plugin. Values the core checks after every hook has run (a tag, the platform,
the builder's name, the context) are remembered with the plugin that set them last, so
such an error names that plugin too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rtbuild._framework.settings import name_problem, scalar_text
from rtbuild.errors import AgentRuntimeBuildError, PluginError

if TYPE_CHECKING:
    from rtbuild.builder import BuildRequest

#: Fields whose values the core checks once every ``pre_build`` hook has run.
WATCHED = ("path", "tags", "platform", "builder", "dockerfile", "target", "extra_build_args")
#: Attribute on the request: {field: origin of the pre_build hook that set it last}.
SET_BY_ATTR = "_rtbuild_set_by"

_OPTIONAL_TEXT = ("platform", "builder", "target", "dockerfile")
_TEXT_LISTS = ("tags", "extra_build_args", "cache_from", "cache_to")
_TEXT_MAPS = ("build_args", "labels")
_FLAGS = ("no_cache", "force")


def find_request(args: tuple[Any, ...]) -> BuildRequest | None:
    """The request among a hook implementation's arguments (``None``: it takes none)."""
    from rtbuild.builder import BuildRequest

    return next((arg for arg in args if isinstance(arg, BuildRequest)), None)


def snapshot(request: BuildRequest) -> dict[str, Any]:
    """Copies of the watched fields, to tell afterwards which ones a hook changed."""
    return {name: _copy(getattr(request, name, None)) for name in WATCHED}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _problem(request: BuildRequest) -> tuple[str, str] | None:
    """``(field, what is wrong)`` for the first field of the wrong type, else ``None``."""
    path = getattr(request, "path", None)
    if not isinstance(path, (str, os.PathLike)):
        return "path", f"is {_kind(path)}, not a string"
    for name in _OPTIONAL_TEXT:
        value = getattr(request, name, None)
        if value is not None and not isinstance(value, str):
            return name, f"is {_kind(value)}, not a string or None"
    for name in _TEXT_LISTS:
        value = getattr(request, name, None)
        if not isinstance(value, list):
            return name, f"is {_kind(value)}, not a list of strings"
        bad = [item for item in value if not isinstance(item, str)]
        if bad:
            return name, f"holds {_kind(bad[0])}, not only strings"
    for name in _TEXT_MAPS:
        value = getattr(request, name, None)
        if not isinstance(value, dict):
            return name, f"is {_kind(value)}, not a dict of strings"
        for key, item in value.items():
            if not isinstance(key, str):
                return name, f"has a key of type {_kind(key)}, not a string"
            if not isinstance(item, (str, bool, int, float)):
                # The value is not shown: build args may hold secrets.
                return name, f"maps {key!r} to {_kind(item)}, not a string"
        if bad_name := name_problem(value):  # no NAME=VALUE argument carries it
            return name, f"is unusable: {bad_name}"
    push = getattr(request, "push", None)
    if push is not None and not isinstance(push, bool):
        return "push", f"is {_kind(push)}, not True, False or None"
    for name in _FLAGS:
        if not isinstance(getattr(request, name, None), bool):
            return name, f"is {_kind(getattr(request, name, None))}, not True or False"
    from rtbuild.builder import BuildSecret

    secrets = getattr(request, "secrets", None)
    if not isinstance(secrets, list) or not all(isinstance(s, BuildSecret) for s in secrets):
        return "secrets", "must be a list of rtbuild.BuildSecret"
    if not isinstance(getattr(request, "data", None), dict):
        return "data", f"is {_kind(getattr(request, 'data', None))}, not a dict"
    return None


def check_request(request: BuildRequest) -> None:
    """The caller's own request, before any hook: a field of the wrong type is a
    :class:`ConfigError` naming it (``BuildRequest(path, tags="app:1")`` was read letter by
    letter: 'invalid image reference '-''). Tuples and other sequences or mappings are taken
    as the lists and dicts they stand for, as the engines' argument lists always took them."""
    for name in _TEXT_LISTS:
        value = getattr(request, name, None)
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes, list)):
            setattr(request, name, list(value))
    for name in _TEXT_MAPS:
        value = getattr(request, name, None)
        if isinstance(value, Mapping) and not isinstance(value, dict):
            setattr(request, name, dict(value))
    problem = _problem(request)
    if problem is not None:
        from rtbuild.errors import ConfigError

        name, what = problem
        example = ' (tags=["app:1"])' if name in _TEXT_LISTS and isinstance(getattr(request, name), str) else ""
        raise ConfigError(
            f"BuildRequest.{name} {what}",
            step="validate request",
            hint=f"give each field of rtbuild.BuildRequest its type{example}: see docs/writing-a-builder.md,"
            " 'The request and the result'",
        )


def check_changes(request: BuildRequest, before: dict[str, Any], origin: str) -> None:
    """After one ``pre_build`` implementation of ``origin``: refuse fields of the wrong
    type (a :class:`PluginError` naming it), spell scalar build args and labels as the
    configuration does (``True`` -> ``true``), and remember which watched fields it set."""
    problem = _problem(request)
    if problem is not None:
        name, what = problem
        raise PluginError(
            f"{origin}: its pre_build hook left request.{name} unusable: it {what}",
            step="pre_build",
            hint="a pre_build hook may change the request's fields but must keep their types"
            " (see rtbuild.BuildRequest); report it to the plugin's authors or disable the plugin",
            blame=origin,
        )
    for name in ("build_args", "labels"):
        values: dict[str, Any] = getattr(request, name)
        if any(not isinstance(value, str) for value in values.values()):
            setattr(request, name, {key: scalar_text(value) for key, value in values.items()})
    set_by: dict[str, str] = vars(request).setdefault(SET_BY_ATTR, {})
    for name, old in before.items():
        if getattr(request, name, None) != old:
            set_by[name] = origin


@contextlib.contextmanager
def blaming(
    request: BuildRequest, *fields: str, only: type[AgentRuntimeBuildError] = AgentRuntimeBuildError
) -> Iterator[None]:
    """An ``only`` error inside names the plugin whose ``pre_build`` hook set one of
    ``fields`` last (when nothing closer to the error is blamed already)."""
    try:
        yield
    except only as exc:
        set_by: dict[str, str] = vars(request).get(SET_BY_ATTR) or {}
        field = next((name for name in fields if name in set_by), None)
        if field is not None and exc.blame is None:
            exc.blame = set_by[field]
            note = f"request.{field} was set by the pre_build hook of {set_by[field]}"
            exc.hint = f"{note}; {exc.hint}" if exc.hint else note
        raise


__all__ = ["SET_BY_ATTR", "WATCHED", "blaming", "check_changes", "check_request", "find_request", "snapshot"]
