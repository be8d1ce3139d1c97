"""What the context walk reports when it cannot read an entry: unreadable (permissions, a
path over the system's limit), or changed under it (listed, then gone or of another type
when read), which :func:`rtbuild.context.hash_context` answers by walking again."""

from __future__ import annotations

import errno

from rtbuild.errors import BuildContextError

#: An entry of the context the walk cannot read.
UNREADABLE_HINT = "make it readable by the user running rtbuild, or exclude it in .dockerignore"

#: Walks of a context that changes under them (an entry listed, then gone or of another
#: type when read: an editor's swap or lock file, a package install) before giving up.
WALKS = 3
_CHANGED = {
    errno.ENOENT: "it was deleted",
    errno.ENOTDIR: "it is no longer a directory",
    errno.EISDIR: "it became a directory",
    errno.EINVAL: "it is no longer a symlink",
}


class ContextChanged(Exception):
    """An entry the walk listed was gone or of another type when read: walk again."""

    def __init__(self, path: str, exc: OSError) -> None:
        super().__init__(path)
        self.path, self.what = path, _CHANGED[exc.errno or 0]

    @staticmethod
    def check(path: str, exc: OSError) -> None:
        if exc.errno in _CHANGED:
            raise ContextChanged(path, exc) from exc

    def error(self) -> BuildContextError:
        return BuildContextError(
            f"{self.path} changed while rtbuild read the context ({self.what} after it was listed), on each of"
            f" {WALKS} walks",
            step="hash context",
            hint="something writes the build context while rtbuild reads it (an editor, a package install, a"
            " log): let it finish or stop it, or leave that path out (.dockerignore), and build again",
        )


def unreadable(root: str, directory: str, exc: OSError) -> BuildContextError:
    if exc.errno != errno.ENAMETOOLONG:
        return BuildContextError(
            f"cannot read {directory}: {exc.strerror}", step="hash context", hint="fix the permissions"
        )
    # A 4,096-byte path is no message: the root and the path's end say where it is.
    return BuildContextError(
        f"cannot read a directory under {root}: {exc.strerror} (...{directory[-120:]})",
        step="hash context",
        hint="a path there is longer than the system allows (4,096 bytes), and no engine could copy it:"
        " shorten it, or leave it out (.dockerignore, --exclude)",
    )


__all__ = ["UNREADABLE_HINT", "WALKS", "ContextChanged", "unreadable"]
