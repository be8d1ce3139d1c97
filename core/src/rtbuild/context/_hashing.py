"""Content hashing of a build context, with a persistent stat cache.

The walk uses ``os.scandir`` and honours .dockerignore exactly as the engine does
(:mod:`rtbuild.dockerignore`). File contents are hashed with xxh3-128; a file whose
(size, mtime_ns, inode, ctime_ns) is unchanged since the last walk is not read again.
The cache lives under ``$XDG_CACHE_HOME/rtbuild/context`` (or ``~/.cache/rtbuild``), one
file per context directory, replaced atomically.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import threading
import time
from dataclasses import dataclass, field
from stat import S_IFMT, S_IMODE, S_ISDIR, S_ISLNK, S_ISREG

import xxhash

from rtbuild._framework.atomic import try_atomic_write
from rtbuild._framework.paths import cache_dir as _cache_dir
from rtbuild.context._dockerignore import PatternMatcher
from rtbuild.context._readahead import ReadAhead
from rtbuild.context._snapshot import KEYS_FORMAT, WalkState, list_dir, root_key
from rtbuild.errors import BuildContextError

#: (name, mode, size, mtime_ns, inode, ctime_ns) of one directory entry
_Key = tuple[str, int, int, int, int, int]
#: an entry's key and its line in the digested listing
_FileEntry = tuple[_Key, str]
#: keys blob (b"" = compare file by file), listing, regular files, marshalled detail
_DirEntry = tuple[bytes, str, int, bytes]

CACHE_VERSION = 4
_CHUNK = 1 << 20


#: Files changed this recently may change again within the filesystem's timestamp
#: granularity without a visible stat change (git's "racy" case): hash them, don't cache.
_RACY_NS = 2_000_000_000


def cache_dir() -> str:
    return str(_cache_dir("context"))


def _cache_path(root: str) -> str:
    return os.path.join(cache_dir(), xxhash.xxh3_64_hexdigest(root.encode("utf-8", "surrogateescape")) + ".marshal")


def hash_file(path: str, size: int | None = None) -> str:
    """xxh3-128 hex digest of a file's contents (all of them: ``size``, the size its stat
    showed, only sizes the first read; a file that grew since is still read to its end).

    ``os.open``/``os.read`` rather than ``open()``: the buffered file object costs an
    fstat, an isatty ioctl and its own allocations per file, about 40% of hashing a
    small file's worth of CPU (first builds hash tens of thousands of them).
    """
    return _hash_fd(os.open(path, os.O_RDONLY), size)


def _hash_fd(fd: int, size: int | None) -> str:
    """:func:`hash_file` of an open descriptor, which it closes."""
    first_read = size + 1 if size is not None and size < _CHUNK else _CHUNK
    try:
        first = os.read(fd, first_read)
        if not first:
            return _EMPTY_DIGEST
        # Only a read that returns nothing proves the end of the file (reads may be short).
        more = os.read(fd, _CHUNK if len(first) == first_read else 1)
        if not more:
            return xxhash.xxh3_128_hexdigest(first)
        hasher = xxhash.xxh3_128(first)
        hasher.update(more)
        while chunk := os.read(fd, _CHUNK):
            hasher.update(chunk)
        return hasher.hexdigest()
    finally:
        os.close(fd)


_EMPTY_DIGEST = xxhash.xxh3_128_hexdigest(b"")
#: What a directory's stat-cache detail holds for a name it has not seen.
_NO_ENTRY: tuple[None, str] = (None, "")


@dataclass
class ContextHash:
    """The digest of a context and what it took to compute it."""

    digest: str
    files: int = 0
    bytes_hashed: int = 0
    cache_hits: int = 0
    #: Every included path with its kind ("d", "f", "l", "s"), when asked for.
    paths: list[tuple[str, str]] | None = None
    #: No usable stat cache existed for this context (first walk, or the cache was lost).
    cold: bool = False
    #: Files whose contents changed while size, mode and mtime stayed what they were at the
    #: last walk (mtime set back by ``touch -d``, ``cp -p``, ``tar x``, ``rsync -a``): an
    #: engine that compares stat data to sync the context (BuildKit) would miss them.
    stat_invisible: list[str] = field(default_factory=list)
    #: False when a .dockerignore pattern's meaning for the sending client is not modelled.
    ignore_exact: bool = True
    #: What the walk saw, for :meth:`changed_since_walk`.
    walk: WalkState | None = field(default=None, repr=False, compare=False)

    def changed_since_walk(self) -> str | None:
        """The first path written, created, deleted, renamed or chmod-ed since this digest's
        walk (even when changed back), ``None`` when nothing was. A builder that labels
        the image with the digest asks this after the engine read the context: a change
        in between means the label could name content the image does not hold."""
        if self.walk is None:
            return "the context (this digest kept no record of its walk)"
        return self.walk.changed()


class StatCache:
    """One context's stat cache, per directory: ``dir -> (keys, listing, files, detail)``.

    ``keys`` is the marshalled list of every entry's (name, mode, size, mtime_ns, inode,
    ctime_ns); when a directory's fresh keys compare equal byte for byte, its ``listing``
    (the lines it adds to the digest) is reused as is and nothing below it is re-read.
    ``detail`` (marshalled ``name -> (key, line)``) is only unpacked for a directory that
    changed, so unchanged files in it are not re-hashed. Stored with :mod:`marshal`:
    a 20,000-file context loads in about a millisecond.
    """

    def __init__(self, root: str, *, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled
        self.path = _cache_path(root)
        self.old: dict[str, _DirEntry] = {}
        self.new: dict[str, _DirEntry] = {}
        self.dirty = False
        if enabled:
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                key = _file_key(os.fstat(handle.fileno()))
                loaded = _LOADED.get(self.path)
                if loaded is not None and loaded[0] == key:
                    self.old = loaded[1]  # this process wrote or read this very file: no unmarshal
                    _remember(self.path, key, self.old)  # now the most recently used
                    return
                data = marshal.loads(handle.read())  # marshal.load(file) reads object by object: slow
        except (OSError, EOFError, ValueError, TypeError):
            return
        valid = isinstance(data, tuple) and len(data) == 3 and data[0] == CACHE_VERSION and data[1] == self.root
        if valid and isinstance(data[2], dict):
            self.old = data[2]
            _remember(self.path, key, self.old)

    @staticmethod
    def key_blob(keys: list[_Key]) -> bytes:
        """The bytes a directory's stat keys are compared by (unchanged directory: equal
        bytes). Marshal format 2 has no back-references, so no per-object lookup: about 40%
        cheaper than the default, and the hottest call of a no-op after the stat itself. A
        blob of another format only compares unequal once: that directory is then checked
        file by file against its detail, without reading any file, and stored again."""
        return marshal.dumps(keys, KEYS_FORMAT)

    def file_entries(self) -> dict[str, _FileEntry]:
        """Every cached file as ``relative path -> (key, line)`` (for tests and tools)."""
        out: dict[str, _FileEntry] = {}
        for prefix, entry in self.old.items():
            for name, item in marshal.loads(entry[3]).items():
                if S_ISREG(item[0][1]):
                    out[prefix + name] = item
        return out

    def save(self) -> None:
        if not self.enabled or not (self.dirty or len(self.new) != len(self.old)):
            return
        # The cache is an optimisation; an unwritable cache dir only costs speed.
        if try_atomic_write(self.path, marshal.dumps((CACHE_VERSION, self.root, self.new))):
            with contextlib.suppress(OSError):
                _remember(self.path, _file_key(os.stat(self.path)), self.new)


#: The last stat cache each recent file held in this process: ``path -> (file key, dict)``.
#: A long-lived caller (a service, a batch, the benchmarks) checks the same contexts again
#: and again; the file's identity (inode, size, mtime, ctime) says whether it is still the
#: one this process read or wrote, so it is not read and unmarshalled each time (1-2 ms
#: for 20,000 files). Any version of the cache is correct to use: every entry is checked
#: against fresh stat keys before it is trusted; a stale one only costs a re-hash.
_LOADED: dict[str, tuple[tuple[int, int, int, int], dict[str, _DirEntry]]] = {}
_LOADED_MAX = 16
_LOADED_GUARD = threading.Lock()


def _file_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remember(path: str, key: tuple[int, int, int, int], entries: dict[str, _DirEntry]) -> None:
    with _LOADED_GUARD:  # batch builds hash contexts on several threads
        _LOADED.pop(path, None)
        if len(_LOADED) >= _LOADED_MAX:
            del _LOADED[next(iter(_LOADED))]  # the least recently used
        _LOADED[path] = (key, entries)


def _line(rel: str, mode: int, directory: str, name: str, size: int, fd: int | None = None) -> str:
    """The digest line of entry ``name`` of ``directory`` (reads a regular file's
    contents; from ``fd`` when given, which it closes). The path is joined only when
    needed: for every file that is ~5% of a cold hash's CPU."""
    if S_ISREG(mode):
        try:
            digest = hash_file(os.path.join(directory, name), size) if fd is None else _hash_fd(fd, size)
        except OSError as exc:
            raise BuildContextError(
                f"cannot read {os.path.join(directory, name)}: {exc.strerror}",
                step="hash context",
                hint="the engine cannot send unreadable files either: fix permissions or .dockerignore it",
            ) from exc
        return f"{rel}\0f{S_IMODE(mode):o}:{digest}\n"
    if S_ISDIR(mode):
        return f"{rel}\0d{S_IMODE(mode):o}\n"
    if S_ISLNK(mode):
        return f"{rel}\0l:{os.readlink(os.path.join(directory, name))}\n"
    return f"{rel}\0s{S_IFMT(mode):o}\n"


def hash_context(
    root: str, matcher: PatternMatcher | None = None, *, use_cache: bool = True, collect_paths: bool = False
) -> ContextHash:
    """Digest of every path of ``root`` that the engine would receive.

    Covers relative path, type, permission bits, file contents and symlink targets; not
    owners or timestamps (BuildKit's COPY cache ignores them too). ``.dockerignore`` and
    the Dockerfile are part of the digest whatever the patterns say; callers add them.
    Directories are walked in sorted order, so the digest depends on the tree only.
    """
    root = os.path.abspath(root)
    excluded = matcher.excluded if matcher else None
    cache = StatCache(root, enabled=use_cache)
    old, new = cache.old, cache.new
    result = ContextHash(digest="")
    # A write in the same clock tick as the last one could leave the stat key unchanged;
    # any later write moves mtime, so a directory holding a newer file is not trusted whole.
    racy_after = time.time_ns() - _RACY_NS
    result.cold = not old
    walked: dict[str, bytes] = {}
    result.walk = WalkState(root, matcher if matcher is not None else PatternMatcher(()), root_key(root), walked)
    parts: list[str] = []
    files = hits = hashed = 0
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            # Directory order, not sorted: an unchanged directory lists in the same order
            # again, and only a changed one needs its lines in name order.
            dir_fd, listing = list_dir(directory)
        except OSError as exc:
            raise BuildContextError(
                f"cannot read {directory}: {exc.strerror}", step="hash context", hint="fix the permissions"
            ) from exc
        try:
            keys: list[_Key] = []
            subdirs: list[tuple[str, str]] = []
            for entry in listing:
                if excluded is not None and excluded(prefix + entry.name):
                    reinclude = matcher is not None and entry.is_dir(follow_symlinks=False)
                    if reinclude and matcher is not None and matcher.may_reinclude_below(prefix + entry.name):
                        subdirs.append((os.path.join(directory, entry.name), prefix + entry.name + "/"))
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    path = os.path.join(directory, entry.name)
                    raise BuildContextError(f"cannot stat {path}: {exc.strerror}", step="hash context") from exc
                # The hot loop of a no-op rebuild: one lstat and one tuple per entry, nothing more.
                keys.append((entry.name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
                if S_ISDIR(st.st_mode):
                    subdirs.append((os.path.join(directory, entry.name), prefix + entry.name + "/"))
            blob = walked[prefix] = StatCache.key_blob(keys)
            cached = old.get(prefix)
            if cached is not None and cached[0] == blob:
                parts.append(cached[1])
                new[prefix] = cached
                files += cached[2]
                hits += cached[2]
            else:
                detail: dict[str, _FileEntry] = marshal.loads(cached[3]) if cached is not None else {}
                lines: dict[str, _FileEntry] = {}
                kept: dict[str, _FileEntry] = {}
                count = 0
                racy = False
                ordered = sorted(keys)  # by name: names are unique and come first
                # Decided once per entry, for the loop and the read-ahead alike: the stat cache
                # vouches for its line, or it is read (a regular file's descriptor comes from
                # the read-ahead, which must be asked for exactly the files the loop reads).
                vouched = [detail.get(key[0], _NO_ENTRY)[0] == key for key in ordered]
                reads = [key[0] for key, ok in zip(ordered, vouched, strict=True) if not ok and S_ISREG(key[1])]
                ahead = ReadAhead(directory, reads, dir_fd)
                try:
                    for key, ok in zip(ordered, vouched, strict=True):
                        name, mode, size, mtime_ns = key[:4]
                        regular = S_ISREG(mode)
                        count += regular
                        known = detail.get(name)
                        if ok and known is not None:  # ok implies known; the test narrows its type
                            line = known[1]
                            hits += regular
                        else:
                            fd = ahead.take(name) if regular else None
                            line = _line(prefix + name, mode, directory, name, size, fd)
                            hashed += size if regular else 0
                            if known is not None and known[1] != line and known[0][1:4] == key[1:4] and regular:
                                result.stat_invisible.append(prefix + name)
                        lines[name] = (key, line)
                        # The later of mtime and ctime: after `cp -p`/`tar x`/`rsync -a` mtime lies in the
                        # past while ctime says when the file was really written.
                        if regular and max(mtime_ns, key[5]) >= racy_after:
                            racy = True
                            # Kept with an impossible inode: never reused, but still there to compare
                            # against, so a later same-stat rewrite is recognised.
                            kept[name] = ((*key[:4], -1, key[5]), line)
                        else:
                            kept[name] = (key, line)
                finally:
                    ahead.close()
                joined = "".join(line for _, line in lines.values())
                parts.append(joined)
                files += count
                # A directory holding a racy file gets an impossible key list, so it is always
                # compared file by file.
                new[prefix] = (b"" if racy else blob, joined, count, marshal.dumps(kept))
                cache.dirty = True
            subdirs.sort()  # the walk's order (and so the digest) depends on names only
            stack.extend(reversed(subdirs))
        finally:
            os.close(dir_fd)
    cache.save()
    result.files, result.cache_hits, result.bytes_hashed = files, hits, hashed
    text = "".join(parts)
    if collect_paths:
        result.paths = [(line.split("\0", 1)[0], line.split("\0", 1)[1][0]) for line in text.splitlines()]
    result.digest = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))
    return result


__all__ = ["CACHE_VERSION", "ContextHash", "StatCache", "cache_dir", "hash_context", "hash_file"]
