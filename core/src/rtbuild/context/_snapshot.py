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

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from stat import S_ISDIR

from rtbuild.context._dockerignore import PatternMatcher, read_dockerignore

#: A file whose mtime or ctime is this recent may change again without a visible stat
#: change (same as the stat cache's rule in :mod:`rtbuild.context._hashing`).
RACY_NS = 2_000_000_000
#: (mode, size, mtime_ns, inode, ctime_ns)
Key = tuple[int, int, int, int, int]


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


def stat_snapshot(root: str, extra_files: Sequence[str] = (), matcher: PatternMatcher | None = None) -> Snapshot:
    """A :class:`Snapshot` of ``root`` (after its .dockerignore) and ``extra_files``.

    Paths are relative to ``root`` (``extra_files`` keep the form given). A path that
    cannot be stat-ed is recorded with an impossible key, so it never compares equal.
    """
    root = os.path.abspath(root)
    if matcher is None:
        matcher = PatternMatcher(read_dockerignore(root))
    # No patterns (the common case): no per-path matcher call at all, as in the hash walk.
    excluded = matcher.excluded if matcher else None
    snap = Snapshot(taken_ns=time.time_ns())
    racy_after = snap.taken_ns - RACY_NS
    keys, racy = snap.keys, snap.racy
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as scanner:
                entries = list(scanner)
        except OSError:
            keys[prefix or "."] = (-1, -1, -1, -1, -1)
            continue
        for entry in entries:
            rel = prefix + entry.name
            if excluded is not None and excluded(rel):
                if entry.is_dir(follow_symlinks=False) and matcher.may_reinclude_below(rel):
                    stack.append((entry.path, rel + "/"))
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                keys[rel] = (-1, -1, -1, -1, -1)
                continue
            # The hot loop (one per path): the key inline, no helper call.
            mode, mtime_ns, ctime_ns = st.st_mode, st.st_mtime_ns, st.st_ctime_ns
            keys[rel] = (mode, st.st_size, mtime_ns, st.st_ino, ctime_ns)
            if S_ISDIR(mode):
                # A directory's own timestamps only move with its listing, and a listing
                # change shows as a path added or removed: never racy itself.
                stack.append((entry.path, rel + "/"))
            elif mtime_ns >= racy_after or ctime_ns >= racy_after:
                racy.append(rel)
    _add_files(snap, extra_files)
    return snap


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


def stat_snapshot_files(paths: Sequence[str]) -> dict[str, Key]:
    """The stat key of each of ``paths`` (following symlinks); an impossible key when absent."""
    out: dict[str, Key] = {}
    for path in paths:
        try:
            out[path] = _key(os.stat(path))
        except OSError:
            out[path] = (-1, -1, -1, -1, -1)
    return out


__all__ = ["RACY_NS", "Snapshot", "files_snapshot", "stat_snapshot", "stat_snapshot_files"]
