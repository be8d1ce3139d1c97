"""The metrics record and the concurrency-safe append of one JSON line."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtbuild import BuildResult


class MetricsWriteError(Exception):
    """The metrics file could not be created or appended to."""


def make_record(result: BuildResult, size_bytes: int | None, stage: str | None = None) -> dict[str, Any]:
    """One line's fields (documented in docs/plugins/metrics.md)."""
    from rtbuild import __version__

    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "image": result.image,
        "builder": result.builder,
        "duration_s": result.duration_s,
        "cached": result.cached,
        "size_bytes": size_bytes,
        "tags": list(result.tags),
        "rtbuild_version": __version__,
        "stage": stage,
    }


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one line with a single ``write`` on an ``O_APPEND`` descriptor.

    POSIX appends each such write at the end of file atomically, so concurrent builds
    (threads or processes) never interleave or overwrite each other's lines.
    """
    data = (json.dumps(record, separators=(",", ":"), sort_keys=True, default=str) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise MetricsWriteError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        written = os.write(fd, data)
        if written != len(data):  # only a full disk does this; keep the file line-structured
            raise MetricsWriteError(f"short write to {path} ({written} of {len(data)} bytes)")
    except OSError as exc:
        raise MetricsWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


__all__ = ["MetricsWriteError", "append_line", "make_record"]
