"""Resident change detection for build contexts: inotify watches instead of a walk.

A :class:`ContextWatch` watches every directory of one context. Its :attr:`generation`
moves whenever the kernel reports anything in them (a write, chmod, touch, create, delete,
rename, the directory itself going away) and when the event queue overflows: a digest
computed by a walk that started at generation ``g`` holds while the generation is ``g``.

Why this is safe: the kernel queues an inotify event before the system call that caused
it returns, and :meth:`ContextWatch.generation` drains the queue (non-blocking) before it
answers. inotify_simple, not watchfiles, whose background thread debounces events. Files
with several hard links are stat-ed again on every answer (a write through an outside
name raises no event here); mounts raise none either: :class:`~rtbuild.context._mounts.MountWatch`
polls the mount table. A watch used in a forked child (which shares its descriptor) is
broken there. Limits, and the filesystems never watched: docs/session.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import os
import threading
from collections.abc import Callable, Iterator
from stat import S_ISDIR
from typing import Any

from rtbuild.context._links import linked_changed as _linked_changed
from rtbuild.context._links import read_through as _read_through
from rtbuild.context._mounts import (
    LOCAL_FILESYSTEMS,
    MountWatch,
    filesystem_type,
    holding_mount,
    untrusted_mount,
    unwatchable_mount,
)
from rtbuild.context._snapshot import WalkState

#: Filesystems where a directory's link count is 2 + its subdirectories, so 2 proves it has
#: none (btrfs always reports 1; overlay, FUSE and network filesystems what they like).
COUNTED_LINKS = frozenset({"ext2", "ext3", "ext4", "xfs", "tmpfs"})
#: Watches per context at most; a bigger tree walks (fs.inotify.max_user_watches: 8192+).
MAX_WATCHES = 20_000
#: Contexts a session keeps watched (the most recently used) when the limit is unknown; else
#: a quarter, 8 to 256, of the user's inotify instances (each watch holds one; often 128).
MAX_CONTEXTS = 32
#: Contexts a session remembers at all (watched or why not), the most recently used.
MAX_ROOTS = 4096


@functools.cache
def max_contexts() -> int:
    try:
        with open("/proc/sys/fs/inotify/max_user_instances") as limit:
            return max(8, min(256, int(limit.read()) // 4))
    except (OSError, ValueError):
        return MAX_CONTEXTS


def root_identity(root: str) -> tuple[int, int] | None:
    """(device, inode) of the directory ``root`` names now (following symlinks)."""
    try:
        st = os.stat(root)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class ContextWatch:
    """inotify watches on every directory under ``root`` (see the module docstring)."""

    def __init__(
        self,
        root: str,
        *,
        include_dir: Callable[[str], bool] | None = None,
        fs_type: str | None = None,
        mounts: MountWatch | None = None,
    ) -> None:
        import inotify_simple
        from inotify_simple import INotify, flags

        if getattr(inotify_simple, "_libc", False) is None:
            # Its own lookup runs `ldconfig -p` (17 ms of CPU) before every process's first
            # watch; dlopen(NULL) finds the loaded libc (a release without the global: its own).
            with contextlib.suppress(OSError):
                inotify_simple._libc = ctypes.CDLL(None, use_errno=True)

        self.root = os.path.abspath(root)
        self._include_dir = include_dir
        self._flags = flags
        self._mask = (
            flags.MODIFY
            | flags.ATTRIB
            | flags.CLOSE_WRITE
            | flags.MOVED_FROM
            | flags.MOVED_TO
            | flags.CREATE
            | flags.DELETE
            | flags.DELETE_SELF
            | flags.MOVE_SELF
            | flags.ONLYDIR
        )
        self._inotify: Any = INotify(nonblocking=True)
        #: Mounts raise no inotify event: this tells when those inside the root changed.
        self._mounts = mounts or MountWatch(self.root)
        #: A forked child shares the inotify descriptor (and its queue) with its parent.
        self._pid = os.getpid()
        #: The directory watched: the root's (device, inode) when the watch began.
        self.identity = root_identity(self.root)
        #: The root's device when its filesystem counts directory links (see COUNTED_LINKS):
        #: a directory on it with a link count of 2 has no subdirectory to list.
        self._counted_dev = self.identity[0] if self.identity and fs_type in COUNTED_LINKS else None
        self._lock = threading.Lock()
        self._generation = 0
        self._wds: dict[int, str] = {}
        #: Why watching stopped, if it did (then every question answers "changed").
        self.broken: str | None = None
        self.events = 0
        self.overflows = 0

    def rewatch(self) -> None:
        """Watch every directory now under the root (idempotent; after any change)."""
        with self._lock:
            if self.broken or self._forked():
                return
            try:
                self._watch_tree()
            except OSError as exc:  # ENOSPC: the system's watch limit; ENOENT: raced away
                self._generation += 1
                if exc.errno == 28:
                    self._break("the system's inotify watch limit is reached (fs.inotify.max_user_watches)")

    def _watch_tree(self) -> None:
        # Each directory is watched before it is listed: a subdirectory created after the
        # listing raises an event on its watched parent, and one created before it is in
        # the listing, so it is watched in turn. Listing first (then watching) would miss
        # one created in between, and every later change inside it.
        include = self._include_dir
        stack: list[tuple[str, str]] = [(self.root, "")]
        count = 0
        while stack:
            directory, prefix = stack.pop()
            count += 1
            if count > MAX_WATCHES:
                self._break(f"more than {MAX_WATCHES} directories")
                return
            wd = self._inotify.add_watch(directory, self._mask)
            self._wds[wd] = directory
            if self._counted_dev is not None:
                # A leaf (most directories) needs no listing. Its link count is read after
                # the watch began, so a subdirectory made since raises an event; a mount
                # point (another device) may count links otherwise, so it is listed.
                st = os.stat(directory)
                if st.st_nlink == 2 and st.st_dev == self._counted_dev and S_ISDIR(st.st_mode):
                    continue
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        rel = prefix + entry.name
                        if include is None or include(rel):
                            stack.append((entry.path, rel + os.sep))

    def _break(self, why: str) -> None:
        self.broken = why
        self._generation += 1
        self._mounts.close()
        with contextlib.suppress(OSError):
            self._inotify.close()  # in a forked child, only the child's copy

    def _forked(self) -> bool:
        if os.getpid() == self._pid:
            return False
        # Draining here would take the parent's events (and adding watches add to its set).
        self._break("the watch was set up by the parent of this forked process")
        return True

    @property
    def generation(self) -> int:
        """Drain the kernel's queue, then the count of change batches seen so far."""
        with self._lock:
            if self.broken or self._forked():
                self._generation += 1  # never equal twice: always "changed"
                return self._generation
            inside = self._mounts.changed()
            if inside is not None:  # mounted or unmounted inside: the path shows other files
                why = untrusted_mount(self.root, inside)
                if why is not None:
                    self._break(why)
                    return self._generation
                self._generation += 1
            try:
                events = self._inotify.read(timeout=0)
            except OSError:
                self._break("the inotify descriptor failed")
                return self._generation
            if events:
                self.events += len(events)
                self._generation += 1
                for event in events:
                    if event.mask & self._flags.Q_OVERFLOW:
                        self.overflows += 1  # events were lost: the walk decides
                    if event.mask & self._flags.IGNORED:
                        self._wds.pop(event.wd, None)
            return self._generation

    def close(self) -> None:
        with self._lock:
            if not self.broken:
                self.broken = "closed"
                self._mounts.close()
                with contextlib.suppress(OSError):
                    self._inotify.close()


class ResidentDigests:
    """Context digests kept across builds, valid while their context's watch saw nothing.

    Installed by :class:`rtbuild.BuildSession` around each build (see :func:`resident`);
    :func:`rtbuild.context.context_digest` asks it first.
    """

    def __init__(self) -> None:
        self._watches: dict[str, ContextWatch | None] = {}
        self._why_not: dict[str, str] = {}
        #: Digests by context and the watch (and its generation) they hold for.
        self._known: dict[tuple[str, str, str, str, str], tuple[ContextWatch, int, Any]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self.hits = 0
        self.walks = 0
        #: Label checks after a build that the watch answered without a walk.
        self.vouched = 0

    def why_not_watched(self, root: str) -> str | None:
        watch = self._watches.get(os.path.abspath(root))  # broken since its last question?
        return watch.broken if watch is not None and watch.broken else self._why_not.get(os.path.abspath(root))

    def digest(self, root: str, dockerfile: str, compute: Callable[[], Any], variant: str = "") -> Any:
        """The memoised digest of ``root`` (+ ``dockerfile``), or ``compute()``'s after a walk.

        ``variant`` tells apart digests of one tree that ``compute`` makes differently (the
        ``.dockerignore`` dialect of the client that will send it)."""
        root = os.path.abspath(root)
        dockerfile = os.path.abspath(dockerfile)
        watch = self._watch(root)
        read_through = _read_through(root, dockerfile)
        if watch is None or read_through is None:
            self.walks += 1
            return compute()
        # Keyed by where the Dockerfile and .dockerignore lead too: a link on the way that
        # lies outside the context can be re-pointed without an event in it.
        key = (root, dockerfile, *read_through, variant)
        known = self._known.get(key)
        if known is not None and known[0] is watch and known[1] == watch.generation and not _linked_changed(known[2]):
            self.hits += 1
            return known[2]
        # Settle the watched set first: no event between two drains around a rewatch
        # means every directory that exists now is watched as of ``generation``.
        generation = None
        for _ in range(3):
            before = watch.generation
            watch.rewatch()
            if watch.generation == before and not watch.broken:
                generation = before
                break
        self.walks += 1
        result = compute()
        if generation is not None and _read_through(root, dockerfile) == read_through:
            with self._lock:  # _forget rebuilds the dict under it
                self._known[key] = (watch, generation, result)
            if isinstance(walk := getattr(result, "walk", None), WalkState):
                walk.vouch = self._vouch(watch, generation, root, dockerfile, read_through, result)
        return result

    def _vouch(
        self,
        watch: ContextWatch,
        generation: int,
        root: str,
        dockerfile: str,
        read_through: tuple[str, str],
        result: Any,
    ) -> Callable[[], bool]:
        """Whether nothing changed since ``generation`` (taken before the walk), by the
        same rules as a memoised digest: the label check after a build asks this before
        it lists the context again (``WalkState.changed``)."""

        def unchanged() -> bool:
            if watch.broken or watch.generation != generation or watch.identity != root_identity(root):
                return False
            if _read_through(root, dockerfile) != read_through or _linked_changed(result):
                return False
            self.vouched += 1
            return True

        return unchanged

    def _watch(self, root: str) -> ContextWatch | None:
        with self._lock:
            if self._closed:  # a call still running when the session closed: walk, watch nothing new
                return None
            if self._pid != os.getpid():  # a forked child: its parent's watches are not its own
                self._pid = os.getpid()
                self._forget(*self._watches)  # closes the child's copies of the descriptors
            watch = self._watches.get(root)
            if watch is not None and watch.identity != root_identity(root):
                # The path names another directory now (a symlink re-pointed, it or a parent
                # moved away and replaced): the old one's events say nothing about it.
                self._forget(root)
            if root in self._watches:
                self._watches[root] = self._watches.pop(root)  # the most recently used last
            else:
                self._make_room()
                watch, why = try_watch(root)
                self._watches[root] = watch
                if why:
                    self._why_not[root] = why
            watch = self._watches[root]
            if watch is not None and watch.broken:
                self._why_not[root] = watch.broken
                return None
            return watch

    def _make_room(self) -> None:
        """Forget the least recently used contexts beyond the bounds (caller holds the lock)."""
        live = [root for root, watch in self._watches.items() if watch is not None]
        self._forget(*live[: max(0, len(live) + 1 - max_contexts())])
        self._forget(*list(self._watches)[: max(0, len(self._watches) + 1 - MAX_ROOTS)])

    def _forget(self, *roots: str) -> None:
        for root in roots:
            watch = self._watches.pop(root)
            if watch is not None:
                watch.close()  # a thread still holding it sees it broken: "changed", a walk
            self._why_not.pop(root, None)
        self._known = {key: value for key, value in self._known.items() if key[0] not in roots}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._forget(*self._watches)


_current: contextvars.ContextVar[ResidentDigests | None] = contextvars.ContextVar("rtbuild_resident", default=None)


def current_resident() -> ResidentDigests | None:
    return _current.get()


@contextlib.contextmanager
def resident(digests: ResidentDigests) -> Iterator[ResidentDigests]:
    """Let :func:`rtbuild.context.context_digest` answer from ``digests`` inside the block."""
    token = _current.set(digests)
    try:
        yield digests
    finally:
        _current.reset(token)


def try_watch(root: str, include_dir: Callable[[str], bool] | None = None) -> tuple[ContextWatch | None, str | None]:
    """A watch on ``root``, or ``(None, why not)`` when it cannot be trusted here."""
    try:  # opened before the checks read the table: any mount after them is seen
        mount_watch = MountWatch(os.path.abspath(root))
    except OSError as exc:
        return None, f"the mount table cannot be watched: {exc}"
    entries = mount_watch.entries
    fs_type = filesystem_type(root, [(point, kind) for point, kind, _options, _ident in entries])
    if fs_type not in LOCAL_FILESYSTEMS:
        why: str | None = f"filesystem {fs_type or 'unknown'} is not watched (changes may come from elsewhere)"
    else:  # the mounts inside (an NFS directory in a local context) and the one holding it
        why = untrusted_mount(root, mount_watch.inside + holding_mount(root, entries))
    if why is None:
        try:
            return ContextWatch(root, include_dir=include_dir, fs_type=fs_type, mounts=mount_watch), None
        except (ImportError, OSError) as exc:
            why = f"inotify unavailable: {exc}"
    mount_watch.close()
    return None, why


__all__ = [
    "COUNTED_LINKS",
    "LOCAL_FILESYSTEMS",
    "MAX_CONTEXTS",
    "MAX_ROOTS",
    "MAX_WATCHES",
    "ContextWatch",
    "ResidentDigests",
    "current_resident",
    "filesystem_type",
    "resident",
    "root_identity",
    "try_watch",
    "unwatchable_mount",
]
