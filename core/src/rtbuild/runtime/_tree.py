"""Removing trees from a staging directory, at any depth.

``os.walk`` and ``shutil.rmtree`` recurse once per directory level on Python 3.11, so a
payload nested deeper than the interpreter's recursion limit (about 1,000 levels) ended
a build in a ``RecursionError``. These walk with an explicit stack instead.
"""

from __future__ import annotations

import os


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


__all__ = ["remove_extra", "remove_tree"]
