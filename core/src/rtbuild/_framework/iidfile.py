"""``--iidfile PATH`` among a request's extra arguments: rtbuild writes the image ID there.

The engine runner passes its own ``--iidfile`` (it reads the ID from it), and the engines
write only the last one given, so the user's file was never written; on a no-op skip no
engine runs at all. The pipeline writes it instead, for a build and a skip alike, as
``docker build`` does: the ID (``sha256:…``) and no newline.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from rtbuild.builder import BuildRequest, BuildResult
from rtbuild.errors import ConfigError

_FLAG = "--iidfile"


def iidfile_arg(args: Sequence[str]) -> str | None:
    """The last ``--iidfile`` value in ``args`` (the one the docker and podman clients use)."""
    found = None
    for index, arg in enumerate(args):
        if arg == _FLAG:
            # Last with no FILE: "" (refused as empty); the engine took the context for it
            # and failed after the build started ('"docker build" requires exactly 1 argument').
            found = args[index + 1] if index + 1 < len(args) else ""
        elif arg.startswith(_FLAG + "="):
            found = arg[len(_FLAG) + 1 :]
    return found


def check_iidfile(request: BuildRequest) -> str | None:
    """The requested ``--iidfile`` path, refused before any build when it cannot be written."""
    path = iidfile_arg(request.extra_build_args)
    if path is None:
        return None
    directory = os.path.dirname(os.path.abspath(path)) if path else ""
    try:
        mode = os.lstat(path).st_mode if path else stat.S_IFREG
    except OSError:
        mode = stat.S_IFREG  # not there yet (or unreadable: the checks below say why)
    # Not a device or FIFO either: it is removed first, and as root `--iidfile /dev/null`
    # removed /dev/null (the docker client does the same).
    odd = not (stat.S_ISREG(mode) or stat.S_ISLNK(mode))
    if not path or odd or not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        why = (
            "is empty"
            if not path
            else "is a directory"
            if stat.S_ISDIR(mode)
            else "is not a regular file (a device, a FIFO or a socket)"
            if odd
            else f"is in {directory!r}, which does not exist"
            if not os.path.isdir(directory)
            else f"is in {directory!r}, which this user cannot write to"
        )
        raise ConfigError(
            f"--iidfile {path!r} {why}",
            step="check --iidfile",
            hint="name a regular file in an existing, writable directory (rtbuild replaces it with the image ID)",
        )
    try:
        os.unlink(path)  # as docker does: a failed build must not leave an earlier build's ID there
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(
            f"cannot remove the earlier --iidfile {path!r}: {exc.strerror}",
            step="check --iidfile",
            hint="make it writable or name another file (a failed build would leave the old ID in it)",
        ) from exc
    return path


def write_iidfile(path: str, result: BuildResult) -> None:
    """Write ``result``'s image ID to ``path`` (atomically); a builder that reports none: a warning."""
    from rtbuild._framework.atomic import atomic_write

    image_id = result.details.get("image_id")
    if not isinstance(image_id, str) or not image_id:
        from rtbuild._framework.progress import get_reporter

        get_reporter().event(
            "warning",
            message=f"--iidfile {path} not written: builder {result.builder!r} reported no image ID for {result.image}",
        )
        return
    try:
        atomic_write(path, image_id, mode=0o644)  # as the engines write it (mkstemp alone: 0600)
    except OSError as exc:
        raise ConfigError(
            f"cannot write --iidfile {path!r}: {exc.strerror}",
            step="write --iidfile",
            hint=f"{result.image} was built; its ID is {image_id}",
        ) from exc


__all__ = ["check_iidfile", "iidfile_arg", "write_iidfile"]
