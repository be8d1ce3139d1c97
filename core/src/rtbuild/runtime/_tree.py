"""Removing trees from a staging directory, at any depth.

``os.walk`` and ``shutil.rmtree`` recurse once per directory level on Python 3.11, so a
payload nested deeper than the interpreter's recursion limit (about 1,000 levels) ended
a build in a ``RecursionError``. These walk with an explicit stack instead.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

from rtbuild.errors import BuildContextError, BuildFailedError


def remove_tree(path: str) -> None:
    """Remove ``path`` (a directory tree, a file or a symlink; nothing if absent), at any depth."""
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            os.unlink(path)
            return
    except FileNotFoundError:
        return
    # Depth first: a directory is removed once everything below it is.
    stack: list[tuple[str, bool]] = [(path, False)]
    while stack:
        directory, emptied = stack.pop()
        if emptied:
            os.rmdir(directory)
            continue
        stack.append((directory, True))
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)


def remove_extra(target: str, expected: set[str]) -> None:
    """Delete what is under ``target`` but not in ``expected`` (``/``-separated relative paths)."""
    stack = [""]
    while stack:
        prefix = stack.pop()
        with os.scandir(os.path.join(target, prefix) if prefix else target) as entries:
            found = [(prefix + entry.name, entry.path, entry.is_dir(follow_symlinks=False)) for entry in entries]
        for rel, full, is_dir in found:
            if rel in expected:
                if is_dir:
                    stack.append(rel + "/")
            elif is_dir:
                remove_tree(full)
            else:
                os.unlink(full)


@contextmanager
def staging_errors(where: str) -> Iterator[None]:
    """Turn an ``OSError`` while writing a runtime build context in ``where`` into an rtbuild error."""
    try:
        yield
    except OSError as exc:
        path = str(exc.filename or "")
        path = path if len(path) <= 160 else f"...{path[-160:]}"
        message = f"cannot write the runtime build context in {where}: {exc.strerror or exc}" + (path and f" ({path})")
        step = "write runtime context"
        if exc.errno == errno.ENAMETOOLONG:
            raise BuildContextError(
                message,
                step=step,
                hint="a path in the staged context would be longer than the system allows (4,096 bytes):"
                " shorten the payload's deepest paths, or point XDG_CACHE_HOME (where the context is"
                " staged) at a shorter directory",
            ) from exc
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = f"the disk holding {where} is full: free space there, or point XDG_CACHE_HOME / TMPDIR elsewhere"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "rtbuild cannot write there: fix its permissions, or point XDG_CACHE_HOME / TMPDIR elsewhere"
        else:
            hint = "check the file system holding it (XDG_CACHE_HOME for the staged context, TMPDIR otherwise)"
        raise BuildFailedError(message, step=step, hint=hint) from exc


__all__ = ["remove_extra", "remove_tree", "staging_errors"]
