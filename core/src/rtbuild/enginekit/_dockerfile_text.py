"""A Dockerfile's text as the engines read it, for a parser that reads it otherwise
(``dockerfile-parse``): what BuildKit and Buildah skip must not hide an instruction."""

from __future__ import annotations

import re
import shlex

#: The continuation character an ``escape`` directive names (``\\`` without one).
_ESCAPE_CHAR = re.compile(r"^\s*#\s*escape\s*=\s*([\\`])\s*$", re.IGNORECASE | re.MULTILINE)
#: Instructions that may open here-documents (BuildKit's Dockerfile 1.4 syntax, the default
#: frontend of Docker 23 and later), and a here-document's marker: ``<<EOF``, ``<<-EOF``
#: (leading tabs stripped from its lines), ``<<"EOF"``, ``<<'EOF'``, ``2<<EOF``.
_HEREDOC_INSTRUCTION = re.compile(r"^\s*(?:RUN|COPY|ADD)\s", re.IGNORECASE)
_HEREDOC = re.compile(r"\d*<<(-?)([A-Za-z0-9_.-]+)$")  # a word, its quotes already removed


def without_bom(dockerfile_text: str) -> str:
    """The Dockerfile without a leading UTF-8 byte-order mark, which BuildKit and Buildah
    drop: kept, it hides the first instruction (a ``FROM``, so its base image) from the
    parser, and a base image moved under its tag would not be noticed."""
    return dockerfile_text[1:] if dockerfile_text.startswith("\ufeff") else dockerfile_text


def _heredocs(instruction: str, escape: str) -> list[tuple[str, bool]]:
    """The here-documents a ``RUN``/``COPY``/``ADD`` instruction opens: (end word, tabs
    stripped). Its words are split as a shell would, as BuildKit does: a quoted ``"a <<b"``
    opens none. Where the split fails, none either: a body then read as instructions costs
    at most a needless look at an image; a body wrongly skipped could hide a base image."""
    if not _HEREDOC_INSTRUCTION.match(instruction):
        return []
    try:
        words = shlex.split(re.sub(re.escape(escape) + r"[ \t]*\r?\n", " ", instruction), comments=False, posix=True)
    except ValueError:
        return []
    return [(m.group(2), m.group(1) == "-") for word in words if (m := _HEREDOC.match(word))]


def parser_text(dockerfile_text: str) -> str:
    """The Dockerfile as the engines read it, for ``dockerfile-parse``: no byte-order mark,
    no empty line inside a continued instruction, no here-document bodies. BuildKit skips
    empty lines there (``FROM \\``, an empty line, ``base:1`` is ``FROM base:1``);
    dockerfile-parse ends the instruction there, and the base image would go unseen.
    Comment lines keep a continuation going, as in the engines; dockerfile-parse already
    reads those right. It reads a here-document's lines (``COPY <<EOF /init.sql``, then
    ``FROM users;``) as instructions, so a body line could name a base image that is not."""
    text = without_bom(dockerfile_text)
    match = _ESCAPE_CHAR.search(text)
    escape = match.group(1) if match else "\\"
    out: list[str] = []
    continued = False
    instruction = ""  # the instruction's physical lines so far
    bodies: list[tuple[str, bool]] = []  # here-documents still to skip, in order
    for line in text.splitlines(keepends=True):
        if bodies:
            word, tabs = bodies[0]
            content = line.rstrip("\r\n")
            if (content.lstrip("\t") if tabs else content) == word:
                bodies.pop(0)
            continue
        stripped = line.strip()
        if not stripped and continued:
            continue
        out.append(line)
        if stripped and not stripped.startswith("#"):
            instruction += line
            continued = stripped.endswith(escape)
            if not continued:
                bodies = _heredocs(instruction, escape)
                instruction = ""
    return "".join(out)


__all__ = ["parser_text", "without_bom"]
