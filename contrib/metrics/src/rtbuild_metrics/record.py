"""The metrics record and the concurrency-safe append of one JSON line."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtbuild import BuildRequest, BuildResult

#: Step fields kept per line (start/end let a report draw a timeline; the rest is ballast).
_STEP_KEYS = ("name", "source", "start", "end", "duration_s", "cached", "status", "internal", "layer_bytes")


def repository(image: str) -> str:
    """``registry/name`` without tag or digest: the unit the report groups by."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _steps(details: dict[str, Any]) -> list[dict[str, Any]] | None:
    steps = details.get("steps")
    if not isinstance(steps, list):
        return None
    return [{k: step[k] for k in _STEP_KEYS if k in step} for step in steps if isinstance(step, dict)]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MetricsWriteError(Exception):
    """The metrics file could not be created or appended to."""


def make_record(result: BuildResult, size_bytes: int | None, stage: str | None = None) -> dict[str, Any]:
    """One line's fields (documented in docs/plugins/metrics.md)."""
    from rtbuild import __version__

    record: dict[str, Any] = {
        "timestamp": _now(),
        "image": result.image,
        "repository": repository(result.image),
        "builder": result.builder,
        "success": True,
        "duration_s": result.duration_s,
        "cached": result.cached,
        "size_bytes": size_bytes,
        "tags": list(result.tags),
        "rtbuild_version": __version__,
        "stage": stage,
    }
    steps = _steps(result.details)
    if steps is not None:
        record["steps"] = steps
    return record


def make_failure_record(
    request: BuildRequest, error: Exception, builder: str | None, duration_s: float, stage: str | None = None
) -> dict[str, Any]:
    """The line for a failed build: the error's class and step, never its message (it may
    quote a build argument or a command line)."""
    from rtbuild import __version__

    image = request.tags[0] if request.tags else ""
    step = getattr(error, "step", None)
    return {
        "timestamp": _now(),
        "image": image,
        "repository": repository(image),
        "builder": builder,
        "success": False,
        "duration_s": duration_s,
        "cached": False,
        "size_bytes": None,
        "tags": list(request.tags),
        "rtbuild_version": __version__,
        "stage": stage,
        "error_class": type(error).__name__,
        "failed_step": step if isinstance(step, str) else None,
    }


def rotated(path: Path) -> Path:
    """Where the file's previous generation is kept: ``metrics.jsonl.1``."""
    return path.with_name(path.name + ".1")


def append_line(path: Path, record: dict[str, Any], max_bytes: int = 0) -> None:
    """Append ``record`` as one line with a single ``write`` on an ``O_APPEND`` descriptor.

    POSIX appends each such write at the end of file atomically, so concurrent builds
    (threads or processes) never interleave or overwrite each other's lines. Once the
    file holds ``max_bytes`` or more (``0``: no bound), it becomes :func:`rotated`'s
    (replacing the generation before), so the lines on disk stay under about twice that.
    """
    data = (json.dumps(record, separators=(",", ":"), sort_keys=True, default=str) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_NONBLOCK: a FIFO with no reader is an error (ENXIO), not a build that never ends;
        # then cleared, so a FIFO a collector reads gets each line whole, as a file does.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
        os.set_blocking(fd, True)
    except OSError as exc:
        raise MetricsWriteError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        written = os.write(fd, data)
        if written != len(data):  # only a full disk does this; keep the file line-structured
            raise MetricsWriteError(f"short write to {path} ({written} of {len(data)} bytes)")
        if max_bytes and os.fstat(fd).st_size >= max_bytes:
            _rotate(path, fd)
    except OSError as exc:
        raise MetricsWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _rotate(path: Path, fd: int) -> None:
    """Move the full file aside, once: of the writers that filled it, the one holding its
    lock renames it, and only while ``path`` still names it (a writer that got the lock
    after the rename must not move the new file over the old generation). A writer whose
    line went into the file just before the rename finds it in the old generation."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another writer is rotating it
    try:
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.replace(path, rotated(path))
    except FileNotFoundError:
        pass  # rotated already
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


__all__ = ["MetricsWriteError", "append_line", "make_failure_record", "make_record", "repository", "rotated"]
