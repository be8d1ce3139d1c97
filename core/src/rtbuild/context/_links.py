"""Where a resident digest's inputs lead through links, and whether hard-linked files changed.

A :class:`rtbuild.context._resident.ResidentDigests` answer holds only while the Dockerfile and
``.dockerignore`` still lead where they did (a link outside the context can be re-pointed
without an event in it) and no file with another hard link was written through its other name.
"""

from __future__ import annotations

import os
from typing import Any


def read_through(root: str, dockerfile: str) -> tuple[str, str] | None:
    """Where the Dockerfile and ``.dockerignore`` lead (links resolved), or ``None`` when
    either ends outside the context: the digest reads them through their links, and the
    watch sees only the context's directories, so an edit there would go unseen."""
    ignore = os.path.join(root, ".dockerignore")
    if os.path.dirname(dockerfile) == root and not os.path.islink(dockerfile) and not os.path.islink(ignore):
        # The common case, in two lstats (three realpaths cost 50 us, 4% of a no-op): both
        # sit in the watched root directory itself, and neither is a link.
        return dockerfile, ignore
    from rtbuild.context._validate import resolved_inside

    to_dockerfile, to_ignore = resolved_inside(root, dockerfile), resolved_inside(root, ignore)
    if to_dockerfile is None or to_ignore is None:
        return None
    return to_dockerfile, to_ignore


def linked_changed(result: Any) -> bool:
    """Whether a file of the walk's ``result`` with another hard link (maybe outside the
    context, where a write raises no event here) changed since the walk."""
    linked = getattr(result, "linked", None)
    if not linked:
        return False
    from rtbuild.context._snapshot import linked_changed as changed

    return changed(linked) is not None


__all__ = ["linked_changed", "read_through"]
