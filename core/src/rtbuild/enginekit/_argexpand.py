"""Build-arg references in a Dockerfile line, expanded as the Dockerfile frontend does (for
the analysis of the images and sources a Dockerfile takes from outside)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _closing_brace(text: str, start: int) -> int:
    """The index of the ``}`` closing the ``${`` whose ``{`` is at ``start``, or -1."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def expand(text: str, values: Mapping[str, str]) -> str:
    """``text`` with ``$NAME`` and ``${NAME...}`` expanded as the Dockerfile frontend does,
    modifiers included: ``${A:-word}`` / ``${A-word}`` (``word`` when A is empty or unset),
    ``${A:+word}`` / ``${A+word}`` (``word`` when A is set, else empty), nested references in
    ``word`` too. An ARG declared without a value counts as unset. Other forms (``:?``,
    ``#``, ``%``) give A's value. Unknown names expand to nothing. Taking only A's value,
    ``FROM ${BASE:-debian}`` without BASE named no image, and the build failed."""
    out: list[str] = []
    index = 0
    while index < len(text):
        dollar = text.find("$", index)
        if dollar < 0:
            out.append(text[index:])
            break
        out.append(text[index:dollar])
        name = _NAME.match(text, dollar + 1)
        if name:
            out.append(values.get(name.group(), ""))
            index = name.end()
            continue
        end = _closing_brace(text, dollar + 1) if text.startswith("{", dollar + 1) else -1
        name = _NAME.match(text, dollar + 2) if end > 0 else None
        if name is None or end < 0:
            out.append("$")
            index = dollar + 1
            continue
        value = values.get(name.group(), "")
        rest = text[name.end() : end]
        operator = rest[1:2] if rest.startswith(":") else rest[:1]
        word = rest[rest.index(operator) + 1 :] if operator in ("-", "+") else ""
        if operator == "-":
            out.append(value or expand(word, values))
        elif operator == "+":
            out.append(expand(word, values) if value else "")
        else:
            out.append(value)
        index = end + 1
    return "".join(out)


__all__ = ["expand"]
