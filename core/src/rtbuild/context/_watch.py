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
broken there. The watches of a session share one inotify instance (:mod:`rtbuild.context._hub`).
Limits, and the filesystems never watched: docs/session.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from stat import S_ISDIR

from rtbuild.context._hub import WatchHub, fork_safe_lock
from rtbuild.context._mounts import (
    LOCAL_FILESYSTEMS,
    MountWatch,
    filesystem_type,
    holding_mount,
    untrusted_mount,
    unwatchable_mount,
)

#: Filesystems where a directory's link count is 2 + its subdirectories, so 2 proves it has
#: none (btrfs always reports 1; overlay, FUSE and network filesystems what they like).
COUNTED_LINKS = frozenset({"ext2", "ext3", "ext4", "xfs", "tmpfs"})
#: Watches per context at most; a bigger tree walks (fs.inotify.max_user_watches: 8192+).
MAX_WATCHES = 20_000


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
        hub: WatchHub | None = None,
    ) -> None:
        from inotify_simple import flags

        self.root = os.path.abspath(root)
        self._include_dir = include_dir
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
        #: The inotify instance: a session's, shared by its watches, else this watch's own.
        self._own_hub = hub is None
        self._hub = hub or WatchHub()
        self._inbox = self._hub.register()
        #: Mounts raise no inotify event: this tells when those inside the root changed.
        self._mounts = mounts or MountWatch(self.root)
        #: A forked child shares the inotify descriptor (and its queue) with its parent.
        self._pid = os.getpid()
        #: The directory watched: the root's (device, inode) when the watch began.
        self.identity = root_identity(self.root)
        #: The root's device when its filesystem counts directory links (see COUNTED_LINKS):
        #: a directory on it with a link count of 2 has no subdirectory to list.
        self._counted_dev = self.identity[0] if self.identity and fs_type in COUNTED_LINKS else None
        self._lock = fork_safe_lock(self)  # a forked child gets a free one
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
                if exc.errno == 28:  # the system's limit, or the session's share of it (the hub says)
                    own = exc.strerror if exc.strerror and "inotify" in exc.strerror else None
                    self._break(own or "the system's inotify watch limit is reached (fs.inotify.max_user_watches)")

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
            wd = self._hub.add_watch(self._inbox, directory, self._mask)
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
        self._stop()

    def _stop(self) -> None:
        self._mounts.close()
        self._hub.release(self._inbox, self._wds)  # in a forked child, no rm_watch
        if self._own_hub:
            self._hub.close()  # in a forked child, only the child's copy

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
                events, overflows, ignored = self._hub.take(self._inbox)
            except OSError:
                self._break("the inotify descriptor failed")
                return self._generation
            if events:
                self.events += events
                self.overflows += overflows  # events were lost: the walk decides
                self._generation += 1
                for wd in ignored:
                    self._wds.pop(wd, None)
            return self._generation

    def close(self) -> None:
        with self._lock:
            if not self.broken:
                self.broken = "closed"
                self._stop()


def try_watch(
    root: str, include_dir: Callable[[str], bool] | None = None, hub: WatchHub | None = None
) -> tuple[ContextWatch | None, str | None]:
    """A watch on ``root`` (in ``hub``'s inotify instance, else its own), or ``(None, why not)``
    when it cannot be trusted here."""
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
            return ContextWatch(root, include_dir=include_dir, fs_type=fs_type, mounts=mount_watch, hub=hub), None
        except (ImportError, OSError) as exc:
            why = f"inotify unavailable: {exc}"
    mount_watch.close()
    return None, why


__all__ = [
    "COUNTED_LINKS",
    "LOCAL_FILESYSTEMS",
    "MAX_WATCHES",
    "ContextWatch",
    "filesystem_type",
    "root_identity",
    "try_watch",
    "unwatchable_mount",
]
