"""Build logs a running build still writes: how a build marks its log, how prune sees it.

A build holds a shared ``flock`` on its log from opening it to its end
(:func:`hold_log`), and keeps the file open. ``rtbuild prune`` keeps a log whose flock it
cannot take (a build in a container sharing the directory, whose process this host's PID
namespace does not show) or that a process here has open (``/proc/*/fd``: a writer that
takes no lock), and lists it as kept: a long step that prints nothing leaves a running
build's log unmodified past ``--older-than``, and removed, the build's error named a log
that was gone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from rtbuild._observe.prune import PruneItem, PrunePolicy

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, /proc decides
    fcntl = None  # type: ignore[assignment]

#: What a kept log's reason ends with.
KEPT_WRITING = "kept: a running build writes it"


def hold_log(handle: IO[Any]) -> None:
    """Mark ``handle``'s log as written by a running build until it is closed (best effort)."""
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)


def flock_held(path: str | os.PathLike[str]) -> bool:
    """Whether some process holds a flock on ``path`` (asked without keeping it)."""
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def open_here(files: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which of ``files`` (device, inode) a process on this host has open (``/proc/*/fd``;
    none where there is no /proc, or for processes this user cannot see)."""
    found: set[tuple[int, int]] = set()
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in files:
                found.add((st.st_dev, st.st_ino))
    return found


def old_logs(directory: str | os.PathLike[str], now: float, max_age: float) -> list[tuple[Path, os.stat_result]]:
    """``directory``'s ``*.log`` regular files (not symlinks) unmodified for ``max_age``."""
    try:
        paths = sorted(Path(directory).glob("*.log"))
    except OSError:
        return []
    out = []
    for path in paths:
        try:
            st = path.lstat()
        except OSError:
            continue
        if path.is_file() and not path.is_symlink() and now - st.st_mtime >= max_age:
            out.append((path, st))
    return out


def in_use(found: Iterable[tuple[Path, os.stat_result]]) -> set[Path]:
    """The logs of ``found`` a running build still writes (its flock, or open here)."""
    found = list(found)
    held = {path for path, _ in found if flock_held(path)}
    rest = {(st.st_dev, st.st_ino): path for path, st in found if path not in held}
    return held | {rest[key] for key in open_here(set(rest))} if rest else held


def prune_logs(
    directory: str | os.PathLike[str], policy: PrunePolicy, max_age: float, reason: str | None = None
) -> list[PruneItem]:
    """The logs of ``directory`` older than ``max_age``, removed unless ``policy.dry_run``;
    one a running build writes is listed as kept (``removed`` false, nothing freed, no
    error). ``reason`` (default: its age) says why a log was selected."""
    from rtbuild._observe.units import human_duration

    found = old_logs(directory, policy.now, max_age)
    writing = in_use(found) if found else set()
    items: list[PruneItem] = []
    for path, st in found:
        why = reason or f"{human_duration(policy.now - st.st_mtime)} old"
        if path in writing:
            items.append(PruneItem("log", str(path), 0, f"{why}; {KEPT_WRITING}"))
            continue
        item = PruneItem("log", str(path), st.st_size, why)
        items.append(item)
        if policy.dry_run:
            continue
        try:
            path.unlink()
            item.removed = True
        except FileNotFoundError:
            item.removed, item.size = True, 0  # someone else tidied it first
        except OSError as exc:
            item.error = exc.strerror or str(exc)
    return items


__all__ = ["KEPT_WRITING", "flock_held", "hold_log", "in_use", "old_logs", "open_here", "prune_logs"]
