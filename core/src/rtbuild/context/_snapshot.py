"""Stat snapshots of a build context: did anything change between two moments?

A snapshot lstats every path the engine would receive (after .dockerignore) plus the
extra files named (the Dockerfile, which may live outside the context) and reads no file
contents: about as cheap as a bare stat walk. Two equal snapshots mean nothing was
written, created, deleted, renamed or chmod-ed in between, with one exception that
:attr:`Snapshot.racy` names: a file written within the filesystem's timestamp granularity
of the first snapshot could be written again without its (mtime, ctime) moving. Any
write moves ``ctime``, which user space cannot set back, so a file whose timestamps are
older than :data:`RACY_NS` before the snapshot is safe (git's "racy clean" rule).
"""

from __future__ import annotations

import marshal
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from stat import S_ISDIR
from typing import Any

from rtbuild.context._dockerignore import PatternMatcher, read_dockerignore

#: A file whose mtime or ctime is this recent may change again without a visible stat
#: change (same as the stat cache's rule in :mod:`rtbuild.context._hashing`).
RACY_NS = 2_000_000_000
#: (mode, size, mtime_ns, inode, ctime_ns)
Key = tuple[int, int, int, int, int]
#: (name, mode, size, mtime_ns, inode, ctime_ns): a directory entry as the hash walk lists it
Entry = tuple[str, int, int, int, int, int]
#: The key of a path that cannot be stat-ed or listed: never equal to a real one.
_GONE: Key = (-1, -1, -1, -1, -1)
#: The marshal format of a directory's stat keys as the hash walk compares them.
KEYS_FORMAT = 2


@dataclass
class Snapshot:
    """Every included path's stat key, and the paths too recent to be trusted."""

    keys: dict[str, Key] = field(default_factory=dict)
    racy: list[str] = field(default_factory=list)
    taken_ns: int = 0

    def changed(self, other: Snapshot) -> list[str]:
        """Paths whose key differs between the two snapshots (added and removed ones too)."""
        out = [path for path, key in self.keys.items() if other.keys.get(path) != key]
        out += [path for path in other.keys if path not in self.keys]
        return sorted(out)


def _key(st: os.stat_result) -> Key:
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def root_key(root: str) -> Key:
    """The stat key of a context's root (an impossible one when it cannot be stat-ed)."""
    try:
        return _key(os.stat(root))
    except OSError:
        return _GONE


def list_dir(directory: str) -> tuple[int, list[os.DirEntry[str]]]:
    """``directory``'s entries, in directory order, and a descriptor of it that the
    caller closes once it is done with them.

    The entries are listed through the descriptor, so their ``stat()`` looks up one name
    in it (``fstatat``) instead of resolving the whole path again: a no-op walk of
    20,002 files takes about 62 ms instead of 73 ms. Their ``path`` is the bare name.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(fd) as scanner:
            return fd, list(scanner)
    except BaseException:
        os.close(fd)
        raise


def _listings(root: str, matcher: PatternMatcher) -> Iterator[tuple[str, list[Entry] | None]]:
    """Every directory whose entries the engine would receive, listed as the hash walk
    lists it (:mod:`rtbuild.context._hashing`): ``(prefix, entries in listing order)``.
    ``None`` for a directory that cannot be listed; an entry that cannot be stat-ed gets
    an impossible key (and is not descended into)."""
    # No patterns (the common case): no per-path matcher call at all, as in the hash walk.
    excluded = matcher.excluded if matcher else None
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            dir_fd, listing = list_dir(directory)
        except OSError:
            yield prefix, None
            continue
        entries: list[Entry] = []
        try:
            for entry in listing:
                rel = prefix + entry.name
                if excluded is not None and excluded(rel):
                    if entry.is_dir(follow_symlinks=False) and matcher.may_reinclude_below(rel):
                        stack.append((os.path.join(directory, entry.name), rel + "/"))
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    entries.append((entry.name, *_GONE))
                    continue
                entries.append((entry.name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
                if S_ISDIR(st.st_mode):
                    stack.append((os.path.join(directory, entry.name), rel + "/"))
        finally:
            os.close(dir_fd)
        yield prefix, entries


def stat_snapshot(root: str, extra_files: Sequence[str] = (), matcher: PatternMatcher | None = None) -> Snapshot:
    """A :class:`Snapshot` of ``root`` (after its .dockerignore) and ``extra_files``.

    Paths are relative to ``root`` (``extra_files`` keep the form given). A path that
    cannot be stat-ed is recorded with an impossible key, so it never compares equal.
    """
    root = os.path.abspath(root)
    if matcher is None:
        matcher = PatternMatcher(read_dockerignore(root))
    snap = Snapshot(taken_ns=time.time_ns())
    racy_after = snap.taken_ns - RACY_NS
    keys, racy = snap.keys, snap.racy
    for prefix, entries in _listings(root, matcher):
        if entries is None:
            keys[prefix or "."] = _GONE
            continue
        for name, mode, size, mtime_ns, inode, ctime_ns in entries:
            rel = prefix + name
            keys[rel] = (mode, size, mtime_ns, inode, ctime_ns)
            # A directory's own timestamps only move with its listing, and a listing
            # change shows as a path added or removed: never racy itself.
            if not S_ISDIR(mode) and (mtime_ns >= racy_after or ctime_ns >= racy_after):
                racy.append(rel)
    _add_files(snap, extra_files)
    return snap


@dataclass
class WalkState:
    """What one hash walk saw: enough to tell afterwards whether anything changed since.

    An engine reads the context after rtbuild hashed it. A file written in between (and
    maybe written back later) would leave an image whose digest label names content it
    does not hold: :meth:`changed` says so after the build. It lists every directory
    again and compares its stat keys with the walk's, byte for byte (about the cost of a
    no-op's stat walk); any write moves ``ctime``, which user space cannot set back, so
    an edit undone before the check still shows. A path created and removed again shows
    as its directory's changed timestamps.
    """

    root: str
    matcher: PatternMatcher
    #: ``os.stat`` key of the root itself: a path created and removed again at the top
    #: shows only there.
    root_key: Key
    #: Per walked directory (``""`` = the root, ``"sub/"``), the marshalled list of
    #: ``(name, *key)`` the walk compared its stat cache with, in listing order.
    dirs: dict[str, bytes] = field(default_factory=dict)
    #: The Dockerfile and ``.dockerignore`` (links followed), keyed as given.
    files: dict[str, Key] = field(default_factory=dict)
    #: ``True`` when something that saw every change since before the walk says there was
    #: none (a BuildSession's watch, see ``ResidentDigests``): then nothing is listed.
    #: ``False`` means "cannot say", and the listings are compared.
    vouch: Callable[[], bool] | None = field(default=None, repr=False, compare=False)

    def changed(self) -> str | None:
        """The first path that differs from what the walk saw; ``None`` when none does."""
        if self.vouch is not None and self.vouch():
            return None
        if root_key(self.root) != self.root_key or self.root_key[0] == -1:
            return "."
        for path, key in stat_snapshot_files(list(self.files)).items():
            if key != self.files[path]:
                return path
        listed = 0
        for prefix, entries in _listings(self.root, self.matcher):
            where = prefix.rstrip("/") or "."
            blob = self.dirs.get(prefix)
            if blob is None or entries is None:
                return where  # a directory the walk did not list, or cannot list now
            # The walk's own form: an unchanged directory lists in the same order with the
            # same keys, so equal bytes mean unchanged.
            if marshal.dumps(entries, KEYS_FORMAT) != blob:
                return _first_difference(prefix, marshal.loads(blob), entries) or where
            listed += 1
        return None if listed == len(self.dirs) else "."  # a listed directory is gone


def _first_difference(prefix: str, before: list[tuple[Any, ...]], now: list[tuple[Any, ...]]) -> str | None:
    """The first entry (by name) of a directory listed with other keys than before."""
    old = {key[0]: key for key in before}
    new = {key[0]: key for key in now}
    differ = [name for name in old.keys() | new.keys() if old.get(name) != new.get(name)]
    return prefix + min(differ) if differ else None


def files_snapshot(paths: Sequence[str]) -> Snapshot:
    """A :class:`Snapshot` of just ``paths`` (following symlinks), racy ones named."""
    snap = Snapshot(taken_ns=time.time_ns())
    _add_files(snap, paths)
    return snap


def _add_files(snap: Snapshot, paths: Sequence[str]) -> None:
    """Add ``paths`` (following symlinks) to ``snap``, racy relative to when it was taken."""
    racy_after = snap.taken_ns - RACY_NS
    for path, key in stat_snapshot_files(paths).items():
        snap.keys[path] = key
        if max(key[2], key[4]) >= racy_after:
            snap.racy.append(path)


def linked_changed(linked: dict[str, Key], settled_before_ns: int | None = None) -> str | None:
    """The first of ``linked`` (a walk's multiply-linked files, ``ContextHash.linked``)
    whose stat key differs from the walk's, or that was written within :data:`RACY_NS` of
    ``settled_before_ns`` or of the walk (then a same-tick write would not show); ``None``
    when none. Every write or chmod moves ``ctime``, whichever name it goes through."""
    floor = None if settled_before_ns is None else settled_before_ns - RACY_NS
    for path, key in linked.items():
        if key[3] == -1 or (floor is not None and max(key[2], key[4]) >= floor):
            return path
        try:
            if _key(os.lstat(path)) != key:
                return path
        except OSError:
            return path
    return None


def stat_snapshot_files(paths: Sequence[str]) -> dict[str, Key]:
    """The stat key of each of ``paths`` (following symlinks); an impossible key when absent."""
    out: dict[str, Key] = {}
    for path in paths:
        try:
            out[path] = _key(os.stat(path))
        except OSError:
            out[path] = _GONE
    return out


__all__ = [
    "KEYS_FORMAT",
    "RACY_NS",
    "Snapshot",
    "WalkState",
    "files_snapshot",
    "linked_changed",
    "list_dir",
    "root_key",
    "stat_snapshot",
    "stat_snapshot_files",
]
