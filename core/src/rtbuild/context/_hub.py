"""One inotify instance shared by all the context watches of a :class:`rtbuild.BuildSession`
(a user has ``fs.inotify.max_user_instances``, 128 by default, for all of its programs).

Whoever asks drains the shared queue and each event is counted for every watch owning its
watch descriptor, in that watch's :class:`Inbox`, read by the watch at its next question.
The kernel gives the same descriptor to one directory watched twice (nested or overlapping
contexts), so a descriptor has a set of owners and is removed only with the last of them.
A lost-events marker (``IN_Q_OVERFLOW``) counts for every watch. Lock order: a watch's lock,
then the hub's; the hub never takes a watch's lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any

#: A session's hub watches at most this share of ``fs.inotify.max_user_watches``: the limit
#: is the user's for all of its programs (and root's daemons, when rtbuild runs as root);
#: a session watching hundreds of large contexts took it all, and their watches failed.
WATCH_SHARE = 4
#: The limit assumed where ``/proc`` does not say (the kernel's old default).
DEFAULT_MAX_USER_WATCHES = 8192


def watch_budget() -> int:
    """Directories one hub may watch: a quarter of ``fs.inotify.max_user_watches``."""
    try:
        with open("/proc/sys/fs/inotify/max_user_watches", "rb") as handle:
            limit = int(handle.read())
    except (OSError, ValueError):
        limit = DEFAULT_MAX_USER_WATCHES
    return max(1, limit // WATCH_SHARE)


class Inbox:
    """What the hub drained for one watch since that watch last asked (under the hub's lock)."""

    __slots__ = ("events", "ignored", "overflows")

    def __init__(self) -> None:
        self.events = 0
        self.overflows = 0
        #: Descriptors the kernel removed (the directory went away): no longer watched.
        self.ignored: list[int] = []


#: Hubs, watches and sessions alive, whose ``_lock`` a forked child gets afresh.
_FORK_LOCKED: weakref.WeakSet[Any] = weakref.WeakSet()


def fork_safe_lock(owner: Any) -> threading.Lock:
    """A new lock for ``owner._lock``, replaced in a forked child: a fork while another
    thread held it leaves it held for ever there, and the child's first question (or
    build) would hang."""
    _FORK_LOCKED.add(owner)
    return threading.Lock()


def _fresh_locks() -> None:
    for owner in list(_FORK_LOCKED):
        owner._lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks)


class WatchHub:
    """An inotify instance and which watches own each of its watch descriptors."""

    def __init__(self) -> None:
        import inotify_simple
        from inotify_simple import INotify, flags

        if getattr(inotify_simple, "_libc", False) is None:
            # Its own lookup runs `ldconfig -p` (17 ms of CPU) before every process's first
            # watch; dlopen(NULL) finds the loaded libc (a release without the global: its own).
            with contextlib.suppress(OSError):
                inotify_simple._libc = ctypes.CDLL(None, use_errno=True)
        self._flags = flags
        self._inotify: Any = INotify(nonblocking=True)
        self._lock = fork_safe_lock(self)
        #: A forked child shares the descriptor (and its queue) with its parent.
        self._pid = os.getpid()
        self._owners: dict[int, set[Inbox]] = {}
        self._inboxes: set[Inbox] = set()
        self.closed = False
        self.budget = watch_budget()

    def _usable(self) -> None:
        """Raise unless this process may use the descriptor (caller holds the lock)."""
        if self._pid != os.getpid() and not self.closed:
            # The child's copy: closing it leaves the parent's instance (and watches) alone.
            self.closed = True
            self._owners.clear()
            with contextlib.suppress(OSError):
                self._inotify.close()
        if self.closed:
            raise OSError(errno.EBADF, "the inotify descriptor is closed")

    def register(self) -> Inbox:
        inbox = Inbox()
        with self._lock:
            self._inboxes.add(inbox)
        return inbox

    def add_watch(self, inbox: Inbox, path: str, mask: int) -> int:
        """Watch ``path`` for ``inbox``; its events count from now (owned under the same lock)."""
        with self._lock:
            self._usable()
            wd: int = self._inotify.add_watch(path, mask)
            if wd not in self._owners and len(self._owners) >= self.budget:
                with contextlib.suppress(OSError):
                    self._inotify.rm_watch(wd)
                raise OSError(
                    errno.ENOSPC,
                    f"this session's share of fs.inotify.max_user_watches ({self.budget} directories) is in use",
                )
            self._owners.setdefault(wd, set()).add(inbox)
            return wd

    def take(self, inbox: Inbox) -> tuple[int, int, list[int]]:
        """Drain the queue, then (events, overflows, removed descriptors) of ``inbox`` since last asked."""
        with self._lock:
            self._usable()
            events = self._inotify.read(timeout=0)
            for event in events:
                if event.mask & self._flags.Q_OVERFLOW:  # events were lost, anyone's
                    for each in self._inboxes:
                        each.events += 1
                        each.overflows += 1
                    continue
                owners = self._owners.get(event.wd, ())
                for each in owners:
                    each.events += 1
                if event.mask & self._flags.IGNORED:
                    for each in owners:
                        each.ignored.append(event.wd)
                    self._owners.pop(event.wd, None)
            taken = (inbox.events, inbox.overflows, inbox.ignored)
            inbox.events = inbox.overflows = 0
            inbox.ignored = []
            return taken

    def release(self, inbox: Inbox, wds: Iterable[int]) -> None:
        """``inbox``'s watch is done: drop it, and each descriptor it was the last owner of."""
        with self._lock:
            self._inboxes.discard(inbox)
            if self._pid != os.getpid() or self.closed:
                return  # never rm_watch from a forked child: the instance is the parent's too
            for wd in wds:
                owners = self._owners.get(wd)
                if owners is None:
                    continue
                owners.discard(inbox)
                if not owners:
                    del self._owners[wd]
                    with contextlib.suppress(OSError):  # EINVAL: the kernel removed it already
                        self._inotify.rm_watch(wd)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._owners.clear()
            self._inboxes.clear()
            with contextlib.suppress(OSError):
                self._inotify.close()  # in a forked child, only the child's copy


__all__ = ["Inbox", "WatchHub", "fork_safe_lock", "watch_budget"]
