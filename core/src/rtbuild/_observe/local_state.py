"""``rtbuild prune``'s local part: stale stat caches, old build logs, dead processes' locks.

- Stat caches (``$XDG_CACHE_HOME/rtbuild/context/*.marshal``): a cache whose context
  directory is gone, written by another cache format, or not used for
  :data:`STAT_CACHE_MAX_AGE_S`; also ``.ctx-*.tmp`` leftovers of an interrupted save.
- Build logs (``$XDG_STATE_HOME/rtbuild/logs/*.log``, where the Docker and Podman
  backends keep them): older than ``--older-than``, else :data:`LOG_MAX_AGE_S`; one a
  running build still writes (its flock, or open in a process here) is listed as kept.
- Lock files (``$XDG_CACHE_HOME/rtbuild/locks/*.lock``): not held (a non-blocking
  ``flock`` succeeds, asked when listing and again when removing: one taken in between
  is ``kept``), written by a process that no longer exists, and untouched for
  :data:`LOCK_MIN_AGE_S`. A build that opened the file just before it goes finds, once it
  holds the flock, that the path no longer names its file and locks the new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from rtbuild._framework.locks import unlink_held
from rtbuild._framework.paths import cache_dir, state_dir
from rtbuild._observe.prune import PruneItem, PrunePolicy

STAT_CACHE_MAX_AGE_S = 30 * 86400.0
LOG_MAX_AGE_S = 14 * 86400.0
LOCK_MIN_AGE_S = 3600.0
TMP_MIN_AGE_S = 3600.0

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: locks are left alone
    fcntl = None  # type: ignore[assignment]


def _files(directory: Path, pattern: str) -> Iterator[tuple[Path, os.stat_result]]:
    try:
        paths = sorted(directory.glob(pattern))
    except OSError:
        return
    for path in paths:
        try:
            st = path.lstat()
        except OSError:
            continue
        if path.is_file() and not path.is_symlink():
            yield path, st


def _read_noatime(path: Path) -> bytes:
    """Read without moving atime (it tells when a build last used the cache)."""
    flags = os.O_RDONLY | getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:  # O_NOATIME needs the file's owner
        fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _stat_cache_reason(path: Path, age: float) -> str | None:
    from rtbuild.context._statcache import CACHE_VERSION, cache_format

    try:
        data = cache_format(_read_noatime(path))
    except OSError:
        return "unreadable"
    if data is None:
        return "not a stat cache"
    if data[0] != CACHE_VERSION:
        return f"format {data[0]!r}, this rtbuild writes {CACHE_VERSION}"
    if not isinstance(data[1], str) or not os.path.isdir(data[1]):
        return f"context {data[1]!r} no longer exists"
    if age >= STAT_CACHE_MAX_AGE_S:
        return f"unused for {int(age // 86400)} days ({data[1]})"
    return None


def stat_caches(now: float) -> list[PruneItem]:
    directory = cache_dir("context")
    out: list[PruneItem] = []
    for path, st in _files(directory, "*.marshal"):
        # An unchanged context never rewrites its cache, only reads it: the last read
        # (atime; relatime still moves it daily) tells whether it is in use.
        reason = _stat_cache_reason(path, now - max(st.st_mtime, st.st_atime))
        if reason:
            out.append(PruneItem("stat-cache", str(path), st.st_size, reason))
    for path, st in _files(directory, ".ctx-*.tmp"):
        if now - st.st_mtime >= TMP_MIN_AGE_S:
            out.append(PruneItem("stat-cache", str(path), st.st_size, "left by an interrupted save"))
    return out


def logs(directory: Path, policy: PrunePolicy, max_age: float) -> list[PruneItem]:
    """Old logs of ``directory``, removed unless a dry run; a running build's is kept
    (listed as such: its flock, or a process here has it open)."""
    from rtbuild.enginekit._logs import prune_logs

    return prune_logs(directory, policy, max_age)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _lock_owner(path: Path) -> int | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        return int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class _Held(OSError):
    """The lock is held: a running build's (its process may be in another PID namespace)."""


def _held(path: Path) -> bool:
    """Whether someone holds the file's flock (asked without keeping it)."""
    if fcntl is None:
        return True  # pragma: no cover - cannot tell: left alone
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # gone, or unreadable: the removal says which
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases it
    return False


def stale_locks(now: float) -> list[PruneItem]:
    from rtbuild._framework.locks import lock_dir

    out: list[PruneItem] = []
    for path, st in _files(lock_dir(), "*.lock"):
        if now - st.st_mtime < LOCK_MIN_AGE_S:
            continue
        pid = _lock_owner(path)
        if pid is not None and _pid_alive(pid):
            continue
        if _held(path):  # a build whose process this host's PID namespace does not see
            continue
        out.append(PruneItem("lock", str(path), st.st_size, f"process {pid} is gone" if pid else "no owner recorded"))
    return out


def _remove_lock(path: str) -> None:
    """Unlink a lock file only while holding its flock (a live holder keeps it)."""
    if fcntl is None:
        raise OSError("no flock on this platform")
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise _Held("held by a running build") from exc
        unlink_held(fd, Path(path))  # not a file a build made at the path since it was opened
    finally:
        os.close(fd)


def prune_local(policy: PrunePolicy) -> list[PruneItem]:
    """Select (and unless ``policy.dry_run`` remove) the local files that are no longer needed."""
    max_log_age = policy.older_than_s if policy.older_than_s is not None else LOG_MAX_AGE_S
    files = stat_caches(policy.now)
    found = logs(state_dir("logs"), policy, max_log_age)  # removed (or kept) as they are listed
    locks = stale_locks(policy.now)
    items = [*files, *found, *locks]
    if policy.dry_run:
        return items
    for item in [*files, *locks]:
        try:
            if item.kind == "lock":
                _remove_lock(item.name)
            else:
                os.unlink(item.name)
            item.removed = True
        except FileNotFoundError:
            item.removed, item.size = True, 0  # someone else tidied it first
        except _Held:  # taken since it was listed: a build runs, not a failure
            item.reason, item.size = f"{item.reason}; kept: a build holds it now", 0
        except OSError as exc:
            item.error = exc.strerror or str(exc)
    return items


__all__ = [
    "LOCK_MIN_AGE_S",
    "LOG_MAX_AGE_S",
    "STAT_CACHE_MAX_AGE_S",
    "logs",
    "prune_local",
    "stale_locks",
    "stat_caches",
]
