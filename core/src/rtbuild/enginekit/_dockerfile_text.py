"""A Dockerfile's text as the engines read it, for a parser that reads it otherwise
(``dockerfile-parse``): what BuildKit and Buildah skip must not hide an instruction."""

from __future__ import annotations

import re

#: The continuation character an ``escape`` directive names (``\\`` without one).
_ESCAPE_CHAR = re.compile(r"^\s*#\s*escape\s*=\s*([\\`])\s*$", re.IGNORECASE | re.MULTILINE)


def without_bom(dockerfile_text: str) -> str:
    """The Dockerfile without a leading UTF-8 byte-order mark, which BuildKit and Buildah
    drop: kept, it hides the first instruction (a ``FROM``, so its base image) from the
    parser, and a base image moved under its tag would not be noticed."""
    return dockerfile_text[1:] if dockerfile_text.startswith("\ufeff") else dockerfile_text


def parser_text(dockerfile_text: str) -> str:
    """The Dockerfile as the engines read it, for ``dockerfile-parse``: no byte-order mark,
    and no empty line inside a continued instruction. BuildKit skips those (``FROM \\``,
    an empty line, ``base:1`` is ``FROM base:1``); dockerfile-parse ends the instruction
    there, and the base image would go unseen. Comment lines keep a continuation going, as
    in the engines; dockerfile-parse already reads those right."""
    text = without_bom(dockerfile_text)
    match = _ESCAPE_CHAR.search(text)
    escape = match.group(1) if match else "\\"
    out: list[str] = []
    continued = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not stripped and continued:
            continue
        out.append(line)
        if stripped and not stripped.startswith("#"):
            continued = stripped.endswith(escape)
    return "".join(out)


__all__ = ["parser_text", "without_bom"]
