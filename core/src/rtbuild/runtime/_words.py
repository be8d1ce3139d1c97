"""Words of the runtime Dockerfiles: quoted values and literal COPY destinations."""

from __future__ import annotations

import json


def quote(value: str) -> str:
    """A Dockerfile double-quoted word: escape backslash, quote and ``$`` (no expansion)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n") + '"'


def copy_into(source: str, directory: str) -> str:
    """``COPY ["SOURCE/", "DIRECTORY/"]`` with the directory taken literally.

    The engines expand variables and read quotes and backslashes in a COPY's arguments,
    the JSON form's too (BuildKit, the legacy builder and Buildah alike): a payload from
    ``./$HOME`` landed in the payload root, one from ``./back\\slash`` in ``backslash``, and
    one from ``./a"b`` failed the build. Each of those characters is escaped.
    """
    literal = "".join("\\" + ch if ch in "\\$\"'" else ch for ch in directory.rstrip("/"))
    return f"COPY {json.dumps([source + '/', literal + '/'])}"


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a surrogate escape: a byte of a name that is not UTF-8
        return False
    return True


__all__ = ["copy_into", "is_utf8", "quote"]
