"""Build locks: concurrent requests for the same tag wait for the build in progress.

One lock per image tag, working across threads *and* processes: an in-process
:class:`threading.Lock` (flock semantics between threads of one process are not
something to rely on) and then an exclusive ``flock`` on a file under
``$XDG_CACHE_HOME/rtbuild/locks`` (or ``~/.cache/rtbuild/locks``), released by the kernel
if the process dies. ``fcntl.flock`` directly rather than ``filelock`` (which uses the
same call): importing filelock costs ~14 ms, about 6% of a no-op ``rtbuild build``;
filelock remains the fallback where there is no ``fcntl`` (Windows). A request holds the
locks of all its tags, taken in sorted order so two requests never deadlock; requests
whose tag sets overlap therefore build one after the other, and the second one finds
the image the first built (the backend's no-op skip) instead of building it again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rtbuild._framework.interrupts import cancellable, raise_if_cancelled
from rtbuild._framework.paths import cache_dir
from rtbuild.errors import AgentRuntimeBuildError, ConfigError

if TYPE_CHECKING:
    from rtbuild._observe.prune import PruneItem

try:  # flock from the standard library: taking a lock costs microseconds, importing nothing
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Lock files live here, below the cache directory.
LOCK_SUBDIR = ("rtbuild", "locks")
#: How often a waiter with a timeout retries.
_POLL_S = 0.05

_registry_guard = threading.Lock()
#: One in-process lock per lock file, alive while some thread holds or waits for it.
_thread_locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()


def lock_dir() -> Path:
    """``$XDG_CACHE_HOME/rtbuild/locks``, else ``~/.cache/rtbuild/locks`` (read on each call)."""
    return cache_dir(*LOCK_SUBDIR[1:])


def normalize_tag(tag: str) -> str:
    """The fully qualified reference, so ``busybox`` and ``docker.io/library/busybox:latest``
    share one lock. An unparsable tag is kept as is (the build reports it)."""
    from rtbuild.errors import InvalidReferenceError
    from rtbuild.oci._references import parse_reference

    try:
        return str(parse_reference(tag))
    except InvalidReferenceError:
        return tag


def lock_name(tag: str) -> str:
    """The lock file name of one (normalised) tag: a hash, since tags hold ``/`` and ``:``.

    xxh3-128, not sha256: a name only has to be stable and collision-free, and loading
    OpenSSL for ``hashlib`` cost about 2 ms of every CLI call that takes a lock."""
    import xxhash  # a core dependency, already loaded by any context or runtime hash

    return f"{xxhash.xxh3_128_hexdigest(normalize_tag(tag).encode('utf-8'))}.lock"


def lock_names(tags: Iterable[str]) -> list[str]:
    """Lock file names for a tag set: de-duplicated and sorted (the acquisition order)."""
    return sorted({lock_name(tag) for tag in tags})


def _thread_lock(path: str) -> threading.Lock:
    with _registry_guard:
        lock = _thread_locks.get(path)
        if lock is None:
            lock = _thread_locks[path] = threading.Lock()
        return lock


def _describe_owner(fd: int) -> str:
    """``" (pid N)"`` from what the holder wrote into the lock file, when readable."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f" (pid {int(info['pid'])})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


#: The owner record is padded to this size and written in place: truncating the file
#: first frees and reallocates its block, a journal commit that took milliseconds on a
#: loaded disk (a resident no-op takes about as long in all).
_RECORD_BYTES = 512


def _record_owner(fd: int, tag: str) -> None:
    data = json.dumps({"pid": os.getpid(), "tag": tag, "since": time.time()}).encode("utf-8")
    with contextlib.suppress(OSError):
        if len(data) > _RECORD_BYTES:  # a very long tag: the rare slow path
            os.ftruncate(fd, 0)
        os.pwrite(fd, data.ljust(_RECORD_BYTES), 0)  # JSON allows the trailing blanks


def _flock(fd: int, deadline: float | None) -> bool:
    """Take the exclusive flock on ``fd`` before ``deadline`` (``None``: wait as long as it takes)."""
    if deadline is None and not cancellable():
        fcntl.flock(fd, fcntl.LOCK_EX)  # interrupted by Ctrl-C like any blocking call
        return True
    # A worker thread of build-many never sees Ctrl-C: it polls, and gives up when cancelled.
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            raise_if_cancelled()
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)


def _acquire(lock: threading.Lock, deadline: float | None) -> bool:
    """``lock.acquire`` until ``deadline``; in slices when the run can be cancelled."""
    if not cancellable():
        if deadline is None:
            return lock.acquire()
        # Clamped: a lock_timeout of inf (accepted: wait as long as it takes) or above about
        # 292 years is more than a lock wait may be given (OverflowError, an internal error).
        return lock.acquire(timeout=min(threading.TIMEOUT_MAX, max(0.0, deadline - time.monotonic())))
    while True:
        left = _POLL_S if deadline is None else min(_POLL_S, max(0.0, deadline - time.monotonic()))
        if lock.acquire(timeout=left):
            return True
        raise_if_cancelled()
        if deadline is not None and time.monotonic() >= deadline:
            return False


def _unusable(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"cannot use {path} for build locks: {exc.strerror or exc}",
        step="take the build lock",
        hint="make $XDG_CACHE_HOME (default ~/.cache) a writable directory, or point it at one",
    )


def _full(exc: OSError) -> bool:
    """A full filesystem (or quota): no lock file can be made, and no configuration is wrong."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _without_file_lock(path: Path, tag: str, exc: OSError) -> None:
    # As a full log or stat-cache directory: a warning, and the build goes on. This process's
    # own builds of the tag still take turns (the thread lock); another process's may not.
    from rtbuild._framework.progress import get_reporter

    get_reporter().event(
        "warning",
        message=f"cannot make the build lock of {tag} in {path.parent} ({exc.strerror or exc}): building without"
        " it, so another process's build of the same tag may run at the same time; free space there",
    )


@contextlib.contextmanager
def _hold_file(
    lock_path: Path, tag: str, wait: Callable[[str], None], deadline: float | None, full: OSError | None = None
) -> Iterator[bool]:
    """Yield whether the file lock was taken (``False``: deadline passed)."""
    if fcntl is None:  # no flock (Windows): filelock does the same with the platform's locks
        from filelock import FileLock, Timeout

        lock = FileLock(str(lock_path), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            wait("")
            try:
                lock.acquire(timeout=-1 if deadline is None else max(0.0, deadline - time.monotonic()))
            except Timeout:
                yield False
                return
        try:
            yield True
        finally:
            lock.release()
        return
    while True:
        try:
            if full is not None:
                raise full
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if not _full(exc):
                raise _unusable(lock_path, exc) from exc
            _without_file_lock(lock_path, tag, exc)
            yield True
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                wait(_describe_owner(fd))
                if not _flock(fd, deadline):
                    yield False
                    return
            if not _still_named(fd, lock_path):
                continue  # removed (released, or pruned) before our flock: lock the new one
            _record_owner(fd, tag)
            try:
                yield True
            finally:
                unlink_held(fd, lock_path)
            return
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def unlink_held(fd: int, lock_path: Path) -> None:
    """Remove ``lock_path`` while holding the flock of ``fd``, only if the path still names
    that file. On release (one file per tag ever built piled up otherwise, thousands a day on
    a busy host) and in ``rtbuild prune``: a waiter that opened it takes the flock of a file
    no longer named and locks a new one (:func:`_still_named`); a file another build made
    at the path since it was opened is never removed."""
    if _still_named(fd, lock_path):
        with contextlib.suppress(OSError):
            os.unlink(lock_path)


def _still_named(fd: int, lock_path: Path) -> bool:
    """Whether ``lock_path`` still names the file ``fd`` holds the flock of. ``rtbuild prune``
    unlinks a dead process's lock file while holding its flock; a build that opened it just
    before locks a file no other build will open, and must take the lock again."""
    try:
        named = os.stat(lock_path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


@contextlib.contextmanager
def _hold_one(
    lock_path: Path, tag: str, on_wait: Callable[[str], None], timeout: float | None, full: OSError | None = None
) -> Iterator[None]:
    deadline = None if timeout is None else time.monotonic() + timeout
    waited = False
    holder = ""

    def wait(owner: str) -> None:
        nonlocal waited, holder
        holder = owner or holder
        if not waited:
            waited = True
            on_wait(f"waiting for the build of {tag} in progress{owner}")

    thread_lock = _thread_lock(str(lock_path))
    if not thread_lock.acquire(blocking=False):
        wait(" (in this process)")
        if not _acquire(thread_lock, deadline):
            raise _timeout_error(tag, timeout, holder)
    try:
        with _hold_file(lock_path, tag, wait, deadline, full) as taken:
            if not taken:
                raise _timeout_error(tag, timeout, holder)
            yield
    finally:
        thread_lock.release()


def _timeout_error(tag: str, timeout: float | None, holder: str = "") -> AgentRuntimeBuildError:
    # flock is released by the kernel when its holder dies, so a holder that is named here
    # is alive: the lock is never stale, and removing the file would not help.
    return AgentRuntimeBuildError(
        f"gave up after {timeout:g}s waiting for the build of {tag} in progress{holder}",
        step="wait for build lock",
        hint=f"another rtbuild process{holder} is building {tag}: wait for it or stop it, or raise --lock-timeout"
        " (lock_timeout in the configuration)",
    )


@contextlib.contextmanager
def build_lock(
    tags: Iterable[str],
    *,
    on_wait: Callable[[str], None] | None = None,
    timeout: float | None = None,
    directory: Path | None = None,
) -> Iterator[None]:
    """Hold the build lock of every tag in ``tags`` (threads and processes) while inside.

    ``on_wait`` receives "waiting for the build of TAG in progress" when another build
    holds a lock (once per tag). ``timeout`` (seconds, ``None`` = wait as long as it takes)
    raises :class:`AgentRuntimeBuildError` when exceeded.
    """
    tag_list = list(tags)
    by_name: dict[str, str] = {}
    for tag in tag_list:
        by_name.setdefault(lock_name(tag), tag)
    root = directory or lock_dir()
    full: OSError | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if not _full(exc):
            raise _unusable(root, exc) from exc
        full = exc  # no lock file can be made there: said per tag below
    notify = on_wait or (lambda message: None)
    with contextlib.ExitStack() as stack:
        for name in sorted(by_name):
            stack.enter_context(_hold_one(root / name, by_name[name], notify, timeout, full))
        raise_if_cancelled()  # the build we waited for was stopped by Ctrl-C: start nothing
        yield


@contextlib.contextmanager
def unless_building(tag: str, *also: str) -> Iterator[bool]:
    """Hold ``tag``'s build lock while inside if no build (thread or process) holds it, and
    say whether it does: ``False`` means a build of ``tag`` is running. For ``rtbuild prune``,
    which must not remove a tag a build is making or has just checked as current (its no-op
    skip). ``also``: other names a build may have locked the tag under (Podman lists a build
    of ``app:1`` as ``localhost/app:1``); all are held, and any one held by a build is
    ``False``. Where no lock file can be made, builds cannot hold one either: ``True``."""
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(build_lock([tag, *also], timeout=0))
    except ConfigError:
        pass
    except AgentRuntimeBuildError:
        stack.close()
        yield False
        return
    with stack:
        yield True


#: Why a prune keeps a tag whose build lock it could not take.
BUILDING = "a build of this tag is running (or another prune holds its build lock)"


def remove_unless_building(
    item: PruneItem,
    remove: Callable[[PruneItem], None],
    *,
    dry_run: bool = False,
    names: Callable[[str], Iterable[str]] = lambda tag: (tag,),
) -> None:
    """A backend's removal of one prune ``item``, as every backend must do it: ``remove(item)``
    inside the tag's build lock (:func:`unless_building` over ``names(item.name)``), or, when
    a build holds it, the item kept (``kept: ...`` in its reason, nothing freed). A dangling
    image has no tag, so no build makes it: removed without a lock. A dry run says the same
    keeps and removes nothing."""
    if item.kind == "dangling":
        if not dry_run:
            remove(item)
        return
    with unless_building(*names(item.name)) as free:
        if not free:
            item.reason, item.size = f"{item.reason}; kept: {BUILDING}", 0
        elif not dry_run:
            remove(item)


__all__ = [
    "BUILDING",
    "build_lock",
    "lock_dir",
    "lock_name",
    "lock_names",
    "normalize_tag",
    "remove_unless_building",
    "unless_building",
    "unlink_held",
]
