"""One settings helper: a builder or plugin declares its table as a dataclass.

The ``[builders.NAME]`` / ``[plugins.NAME]`` table is read against the dataclass: keys and
types come from its fields and annotations, defaults from the field defaults, environment
overrides from :func:`setting`'s ``env``, allowed values from ``Literal`` annotations or
``choices``. Unknown keys get a did-you-mean; every error names the file and line. No
network or disk access happens here: a setting is a value, what it points at is checked
when it is used.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from rtbuild.errors import ConfigError

if TYPE_CHECKING:
    from rtbuild._framework.config import Config

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def scalar_text(value: object) -> str:
    """A build arg's or label's TOML/YAML scalar as the text the engine gets: booleans as
    TOML and YAML write them (``true``, not Python's ``True``), numbers as parsed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def text_map(values: Mapping[Any, object]) -> dict[str, str]:
    """:func:`scalar_text` of every value (keys as text too: YAML allows others)."""
    return {str(k): scalar_text(v) for k, v in values.items()}


def setting(
    default: Any = dataclasses.MISSING,
    *,
    env: str | None = None,
    choices: tuple[Any, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
    help: str = "",
    default_factory: Callable[[], Any] | None = None,
    path: bool = False,
) -> Any:
    """A dataclass field with settings metadata.

    ``env``: an environment variable that overrides the file. ``choices``: the allowed
    values. ``check``: returns a problem ("must be an absolute path") or ``None``.
    ``path``: a path on this machine; a relative one written in the configuration file is
    relative to that file's directory (from ``env``, to the current directory), so the
    same ``rtbuild.toml`` means the same files from every directory below it.
    """
    metadata = {"env": env, "choices": choices, "check": check, "help": help, "path": path}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _kind(annotation: Any) -> tuple[str, Any, bool]:
    """(description, base type, optional) of a supported annotation."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            description, base, _ = _kind(args[0])
            return description, base, True
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in get_args(annotation)), annotation, False
    if origin is list:
        return "list of strings", list, False
    if origin is dict:
        if get_origin(get_args(annotation)[1]) is dict:
            return "table of tables", annotation, False
        return "table of strings", dict, False
    names = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if annotation in names:
        return names[annotation], annotation, False
    raise TypeError(f"unsupported settings annotation {annotation!r}")


def _check(value: Any, annotation: Any) -> bool:
    _description, base, optional = _kind(annotation)
    if value is None:
        return optional
    if get_origin(base) is Literal:
        return value in get_args(base)
    if base is bool:
        return isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is str:
        return isinstance(value, str) and "\0" not in value
    if base is list:
        return isinstance(value, list) and all(isinstance(v, str) and "\0" not in v for v in value)
    if get_origin(base) is dict:  # a table of tables
        return isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())
    if base is dict:
        # YAML (build-many files) allows non-string keys; TOML does not.
        return (
            isinstance(value, dict)
            and all(
                isinstance(k, str) and "\0" not in k and isinstance(v, (str, int, float, bool)) and "\0" not in str(v)
                for k, v in value.items()
            )
            and not name_problem(value)
        )
    return False


def mismatch(value: Any, annotation: Any) -> str:
    """What is wrong with ``value`` for ``annotation`` (which it failed), never showing the
    value itself: build args, labels and extra arguments may hold secrets."""
    _description, base, _optional = _kind(annotation)
    nul = "holds a NUL character (no program can receive it)"
    if isinstance(value, str) and "\0" in value:
        return f"it {nul}"
    if base is list and isinstance(value, list):
        index = next((i for i, v in enumerate(value) if not isinstance(v, str) or "\0" in v), None)
        if index is not None:
            item = value[index]
            return f"item {index + 1} {nul}" if isinstance(item, str) else f"item {index + 1} is {_type_name(item)}"
    if base is dict and isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"a key is {_type_name(key)}"
            if "\0" in key:
                return f"a key {nul}"
            if problem := name_problem({key: item}):
                return problem
            if not isinstance(item, (str, int, float, bool)):
                return f"{key!r} holds {_type_name(item)}"
            if "\0" in str(item):
                return f"the value of {key!r} {nul}"
    if get_origin(base) is dict and isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, dict):
                return f"{key!r} holds {_type_name(item)}"
    return f"got {_type_name(value)}"


def name_problem(table: Mapping[Any, object]) -> str | None:
    """A key no ``NAME=VALUE`` argument can carry: empty (the engine refuses ``--label =v``
    after the build started), or holding ``=`` (``{"A=B" = "v"}`` reached it as ``A=B=v``,
    the build arg ``A`` set to ``B=v``). Tables of strings are build args, labels and
    environment variables."""
    for key in table:
        if isinstance(key, str) and (not key or "=" in key):
            return f"the key {key!r} is empty" if not key else f"the key {key!r} holds '=' (NAME=VALUE has one)"
    return None


def _type_name(value: Any) -> str:
    names = {list: "a list", dict: "a table", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    if value is None:
        return "nothing (null)"
    return names.get(type(value), f"a {type(value).__name__} value")


def _article(kind: str) -> str:
    if kind.startswith("one of"):
        return kind
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def kind_of(annotation: Any) -> str:
    """How errors name a type: "string", "list of strings", "table of strings", ..."""
    return _kind(annotation)[0]


def check_value(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (as parsed from TOML or YAML) fits ``annotation``."""
    return _check(value, annotation)


def schema_of(cls: type[Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{field: annotation}`` of a dataclass: the schema its table is checked against."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in exclude}


def env_value(raw: str, annotation: Any, name: str) -> Any:
    _, base, _ = _kind(annotation)
    if base is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigError(
            f"environment variable {name}={raw!r} is not a boolean",
            step="read configuration",
            hint="use 1/0, true/false, yes/no or on/off",
        )
    if base in (int, float):
        try:
            return base(raw)
        except ValueError:
            raise ConfigError(
                f"environment variable {name}={raw!r} is not a number",
                step="read configuration",
                hint=f"set {name} to a number (e.g. {name}=30), or unset it",
            ) from None
    if base is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def line_of(text: str, table: str, key: str) -> int | None:
    """Best-effort line of ``key`` in the table headed ``[table]`` ("" = the document root);
    tomllib keeps no positions. A key that is itself a table matches its ``[header]``."""
    header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
    assignment = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[=.]")
    full = f"{table}.{key}" if table else key
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = header.match(line)
        if match:
            current = re.sub(r"\s*\.\s*", ".", match.group(1)).replace('"', "").replace("'", "")
            if current == full or current.startswith(full + "."):
                return number
            continue
        if current == table and assignment.match(line):
            return number
    return None


def _type_hints(cls: type[Any]) -> dict[str, Any]:
    """``get_type_hints`` once per settings class: it evaluates every annotation string,
    and settings are read on each build (a plugin's and the builder's table)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


_HINTS: weakref.WeakKeyDictionary[type[Any], dict[str, Any]] = weakref.WeakKeyDictionary()


def _where(config: Config | None, section: str, key: str | None) -> str:
    """``FILE:LINE`` of ``key`` in ``[section]`` when it came from a file, else the table name."""
    if config is None or not config.source:
        return f"[{section}]"
    try:
        with open(config.source, encoding="utf-8-sig") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return config.source
    table = f"tool.rtbuild.{section}" if config.source.endswith("pyproject.toml") else section
    line = line_of(text, table, key) if key else None
    if line is None:
        line = line_of(text, table.rpartition(".")[0], table.rpartition(".")[2])
    return f"{config.source}:{line}" if line else config.source


def load_settings(
    cls: type[T],
    table: Mapping[str, Any],
    *,
    section: str,
    config: Config | None = None,
    env: Mapping[str, str] | None = None,
    docs: str = "docs/configuration.md",
    step: str = "read configuration",
) -> T:
    """Read ``table`` (the ``[section]`` of the config) into an instance of dataclass ``cls``."""
    import os

    env = os.environ if env is None else env
    hints = _type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    def fail(key: str | None, problem: str, hint: str | None = None) -> ConfigError:
        where = _where(config, section, key)
        return ConfigError(f"{where}: {problem}", step=step, hint=hint or f"see {docs} for [{section}]")

    unknown = sorted(set(table) - set(fields))
    if unknown:
        import difflib  # imported here: only an unknown key needs it

        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        known = ", ".join(sorted(fields))
        hint = (f"did you mean {close[0]!r}? " if close else "") + f"known keys: {known} ({docs})"
        raise fail(key, f"unknown key {key!r} in [{section}]", hint)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        annotation = hints[name]
        meta = f.metadata
        env_name = meta.get("env")
        if env_name and env.get(env_name) not in (None, ""):
            value = env_value(str(env[env_name]), annotation, env_name)
            if meta.get("path") and isinstance(value, str) and value.startswith("~"):  # VAR='~/x': quoted, kept
                value = _beside(value, None)
        elif name in table:
            value = table[name]
            if not _check(value, annotation):
                wrong = mismatch(value, annotation)
                raise fail(name, f"[{section}] {name}: expected {_article(kind_of(annotation))}, {wrong}")
            if isinstance(value, dict):
                value = text_map(value)
            if meta.get("path"):
                value = _beside(value, config)
        else:
            continue
        choices = meta.get("choices")
        if choices and value not in choices:
            raise fail(name, f"[{section}] {name} must be one of {', '.join(map(str, choices))}, not {value!r}")
        check = meta.get("check")
        problem = check(value) if check and value is not None else None
        if problem:  # a list or table is not shown whole (an item may hold a password): the check names the item
            shown = f": {problem}" if isinstance(value, (list, dict)) else f" = {value!r} {problem}"
            raise fail(name, f"[{section}] {name}{shown}")
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        raise fail(None, f"[{section}]: {exc}") from None


def _beside(value: Any, config: Config | None) -> Any:
    """A relative path from the configuration file, made relative to the file's directory; ``~`` expanded."""
    import os

    if not isinstance(value, str) or not value:
        return value
    if value.startswith("~"):  # the user's home wherever it is read: a backend's log_dir took it as a name
        return os.path.expanduser(value)
    if os.path.isabs(value) or config is None or not config.source:
        return value
    return os.path.join(os.path.dirname(os.path.abspath(config.source)), value)


def builder_settings(cls: type[T], config: Config, name: str, **kwargs: Any) -> T:
    """``[builders.NAME]`` read into ``cls``."""
    return load_settings(cls, config.builder_config(name), section=f"builders.{name}", config=config, **kwargs)


def plugin_settings(cls: type[T], config: Config, name: str, **kwargs: Any) -> T:
    """``[plugins.NAME]`` read into ``cls``."""
    return load_settings(cls, config.plugin_config(name), section=f"plugins.{name}", config=config, **kwargs)


def describe(cls: type[Any]) -> list[dict[str, Any]]:
    """One row per key (name, type, default, env), e.g. for docs and ``--help`` text."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        rows.append({"key": f.name, "type": _kind(hints[f.name])[0], "default": default, "env": f.metadata.get("env")})
    return rows


__all__ = [
    "builder_settings",
    "check_value",
    "describe",
    "env_value",
    "kind_of",
    "line_of",
    "load_settings",
    "mismatch",
    "name_problem",
    "plugin_settings",
    "scalar_text",
    "schema_of",
    "setting",
    "text_map",
]
