"""TOML text to data, with errors that name the file, the line and the key.

tomllib says ``Cannot overwrite a value (at line 2, column 12)`` for a key written twice,
naming neither the key nor the file; the configuration file and build-many files are
parsed here so their errors say ``rtbuild.toml:2: ... key 'builder' is set twice``.
"""

from __future__ import annotations

import re
from typing import Any

from rtbuild.errors import ConfigError

#: One part of a TOML key: bare, "basic" or 'literal'.
_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_KEY = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_KEY})\s*\]\]?")
_ASSIGNMENT = re.compile(rf"^\s*({_KEY})\s*=")
_POSITION = re.compile(r"\(at line (\d+), column \d+\)$")


def parse_toml(text: str, source: str, *, step: str, hint: str) -> dict[str, Any]:
    """``tomllib.loads(text)``; a syntax error is a :class:`ConfigError` naming ``source``."""
    import tomllib  # imported here: nothing is parsed without a file

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        duplicate = _duplicate(str(exc), text)
        if duplicate is None:
            raise ConfigError(f"{source}: malformed TOML: {exc}", step=step, hint=hint) from exc
        line, problem = duplicate
        raise ConfigError(
            f"{source}:{line}: malformed TOML: {problem}",
            step=step,
            hint="keep one of them (TOML allows each key and each [table] once): merge or remove the other",
        ) from exc


def _parts(key: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in re.findall(_PART, key))


def _dotted(parts: tuple[str, ...]) -> str:
    import json  # only on a mistake

    return ".".join(part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part) for part in parts)


def _defined(text: str, upto: int) -> list[tuple[int, tuple[str, ...], bool]]:
    """(line, full key, is a [header]) of each key and table header of lines 1..``upto``
    (best effort: a multi-line string's lines may look like assignments)."""
    found: list[tuple[int, tuple[str, ...], bool]] = []
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines()[:upto], start=1):
        header = _HEADER.match(line)
        if header:
            table = _parts(header.group(1))
            found.append((number, table, True))
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            found.append((number, table + _parts(assignment.group(1)), False))
    return found


def _clash(key: tuple[str, ...], other: tuple[str, ...], header: bool) -> bool:
    if header:  # [builders.docker] before its log_dir is no clash; [sandbox] twice is
        return other == key
    return other[: len(key)] == key or key[: len(other)] == other


def _duplicate(message: str, text: str) -> tuple[int, str] | None:
    """(line, what is defined twice) for tomllib's duplicate-key errors, else ``None``."""
    position = _POSITION.search(message)
    if position is None:
        return None
    line = int(position.group(1))
    defined = _defined(text, line)
    if message.startswith("Cannot overwrite a value"):
        mine = [key for number, key, header in defined if number == line and not header]
        if not mine:
            return None
        key, what = mine[0], "key {} is set twice"
    elif match := re.match(r"Cannot declare \((.*)\) twice", message):
        key = tuple(re.findall(r"'((?:[^'\\]|\\.)*)'", match.group(1)))
        if not key:
            return None
        what = "table [{}] is declared twice"
    else:
        return None
    # The first definition: the same key or [table], or a key it is part of (push = true, then push.x = 1).
    first = next(((n, o) for n, o, header in defined if n < line and _clash(key, o, header)), None)
    shown = what.format(repr(_dotted(key)) if "key" in what else _dotted(key))
    if first is None:
        return line, shown
    if first[1] != key and len(first[1]) < len(key):  # push = true, then push.x = 1
        return line, f"key {_dotted(key)!r} extends {_dotted(first[1])!r}, a value set at line {first[0]}"
    return line, f"{shown} (first at line {first[0]})"


__all__ = ["parse_toml"]
