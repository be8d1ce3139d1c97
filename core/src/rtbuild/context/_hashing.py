"""Content hashing of a build context, with a persistent stat cache.

The walk uses ``os.scandir`` and honours .dockerignore exactly as the engine does
(:mod:`rtbuild.dockerignore`). File contents are hashed with xxh3-128; a file whose
(size, mtime_ns, inode, ctime_ns) is unchanged since the last walk is not read again.
The cache lives under ``$XDG_CACHE_HOME/rtbuild/context`` (or ``~/.cache/rtbuild``), one
file per context directory, replaced atomically.
"""

from __future__ import annotations

import marshal
import os
import re
import time
from dataclasses import dataclass, field
from stat import S_IFMT, S_IMODE, S_ISDIR, S_ISLNK, S_ISREG

import xxhash

from rtbuild.context._dockerignore import PatternMatcher
from rtbuild.context._readahead import ReadAhead
from rtbuild.context._snapshot import Key as Key5
from rtbuild.context._snapshot import WalkState, list_dir, root_key
from rtbuild.context._statcache import (
    CACHE_VERSION,
    DirEntry,
    FileEntry,
    Key,
    StatCache,
    cache_dir,
    key_hash,
)
from rtbuild.context._walkerrors import UNREADABLE_HINT, WALKS, ContextChanged, unreadable
from rtbuild.context._xattrs import XATTR_MARK, xattrs
from rtbuild.errors import BuildContextError

_CHUNK = 1 << 20


#: Files changed this recently may change again within the filesystem's timestamp
#: granularity without a visible stat change (git's "racy" case): hash them, don't cache.
_RACY_NS = 2_000_000_000


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
    #: last walk (mtime set back by ``touch -d``, ``cp -p``, ``tar x``, ``rsync -a``), and
    #: directories whose mode changed, and entries whose extended attributes changed: an
    #: engine that compares stat data to sync the context (BuildKit) would miss them.
    stat_invisible: list[str] = field(default_factory=list)
    #: False when a .dockerignore pattern's meaning for the sending client is not modelled.
    ignore_exact: bool = True
    #: What the walk saw, for :meth:`changed_since_walk`.
    walk: WalkState | None = field(default=None, repr=False, compare=False)
    #: Regular files with more than one hard link: path -> stat key as walked (an
    #: impossible inode when written within 2 s of the walk). A write through a name
    #: outside the context raises no inotify event in its directories, so whoever answers
    #: from a watch must stat these again (:func:`rtbuild.context.linked_changed`).
    linked: dict[str, Key5] = field(default_factory=dict, repr=False, compare=False)

    def changed_since_walk(self) -> str | None:
        """The first path written, created, deleted, renamed or chmod-ed since this digest's
        walk (even when changed back), ``None`` when nothing was. A builder that labels
        the image with the digest asks this after the engine read the context: a change
        in between means the label could name content the image does not hold."""
        if self.walk is None:
            return "the context (this digest kept no record of its walk)"
        return self.walk.changed()


def _escaped(text: str) -> str:
    """``text`` with backslashes and newlines escaped, so every digest line is one line:
    a name or link target holding a newline could otherwise spell another entry's line,
    and two different trees could give one digest."""
    if "\n" in text or "\\" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n")
    return text


def _unescaped(text: str) -> str:
    return _ESCAPE.sub(lambda match: "\n" if match[1] == "n" else match[1], text) if "\\" in text else text


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _line(rel: str, mode: int, directory: str, name: str, size: int, fd: int | None = None) -> str:
    """The digest line of entry ``name`` of ``directory`` (reads a regular file's
    contents; from ``fd`` when given, which it closes), with its extended attributes
    when it has any (:func:`rtbuild.context._xattrs.xattrs`). The path is joined only when
    needed: for every file that is ~5% of a cold hash's CPU."""
    rel = _escaped(rel)
    if S_ISREG(mode):
        try:
            if fd is None:
                fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            attrs = xattrs(fd)
            digest = _hash_fd(fd, size)
        except OSError as exc:
            ContextChanged.check(os.path.join(directory, name), exc)
            raise BuildContextError(
                f"cannot read {os.path.join(directory, name)}: {exc.strerror}",
                step="hash context",
                hint="the engine's client cannot read it either (BuildKit's sends such a file empty): fix"
                " permissions or .dockerignore it",
            ) from exc
        return f"{rel}\0f{S_IMODE(mode):o}:{digest}{attrs}\n"
    path = os.path.join(directory, name)
    if S_ISDIR(mode):
        return f"{rel}\0d{S_IMODE(mode):o}{xattrs(path)}\n"
    if S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError as exc:
            ContextChanged.check(path, exc)
            raise unreadable(directory, path, exc) from exc
        return f"{rel}\0l:{_escaped(target)}{xattrs(path)}\n"
    # A socket or device node reaches the image as an empty file with the node's permission
    # bits (BuildKit), so they count along with its type.
    return f"{rel}\0s{S_IFMT(mode) | S_IMODE(mode):o}{xattrs(path)}\n"


def _unsynced(old: Key, new: Key, regular: bool) -> bool:
    """Whether an entry whose digest line changed from the last walk's may still match the
    copy BuildKit's incremental sync kept: a file with its size, mode and mtime unchanged,
    or a directory whose mode alone changed (the sync never sends that: `chmod 700 sub`
    left 0755 in the image, moby/buildkit#7176)."""
    if regular:
        return old[1:4] == new[1:4]
    return S_ISDIR(new[1]) and S_ISDIR(old[1])


def _xattrs_changed(old: str, new: str) -> bool:
    """Whether two digest lines of an entry differ in its extended attributes: the sync
    sends none of an entry whose stat kept (setfattr changes ctime only; reproduced on
    Docker 20.10: user.x stayed '1' in the layer after `setfattr -v 2`)."""
    return old.partition(XATTR_MARK)[2] != new.partition(XATTR_MARK)[2]


class _Restart(Exception):
    """The cache's head and body disagree: walk again without the head."""


def _reuse(
    old: dict[str, DirEntry], walked: dict[str, bytes], prefixes: list[str], new: dict[str, DirEntry], parts: list[str]
) -> int:
    """Take the listings of ``prefixes`` (walked while they matched the summary) from the
    body into ``parts`` and ``new``; the number of files they hold."""
    count = 0
    for prefix in prefixes:
        cached = old.get(prefix)
        if cached is None or cached[0] != walked[prefix]:
            raise _Restart
        parts.append(cached[1])
        new[prefix] = cached
        count += cached[2]
    return count


def hash_context(
    root: str, matcher: PatternMatcher | None = None, *, use_cache: bool = True, collect_paths: bool = False
) -> ContextHash:
    """Digest of every path of ``root`` that the engine would receive.

    Covers relative path, type, permission bits, file contents, symlink targets and the
    extended attributes the engine copies (``user.*``, ``trusted.*``; only when present, so
    an entry without them has the line it always had); not owners or timestamps (BuildKit's
    COPY cache ignores them too). ``.dockerignore`` and the Dockerfile are part of the digest
    whatever the patterns say; callers add them.
    Directories are walked in sorted order, so the digest depends on the tree only.
    """
    for walk in range(1, WALKS + 1):
        try:
            try:
                return _hash_context(root, matcher, use_cache, collect_paths, use_summary=not collect_paths)
            except _Restart:
                return _hash_context(root, matcher, use_cache, collect_paths, use_summary=False)
        except ContextChanged as changed:
            if walk == WALKS:
                raise changed.error() from changed
    raise AssertionError("unreachable")


def _hash_context(
    root: str, matcher: PatternMatcher | None, use_cache: bool, collect_paths: bool, *, use_summary: bool
) -> ContextHash:
    root = os.path.abspath(root)
    excluded = matcher.excluded if matcher else None
    cache = StatCache(root, enabled=use_cache)
    new = cache.new
    result = ContextHash(digest="")
    # A write in the same clock tick as the last one could leave the stat key unchanged;
    # any later write moves mtime, so a directory holding a newer file is not trusted whole.
    racy_after = time.time_ns() - _RACY_NS
    # While every directory so far matches the last walk's summary (same prefix, same
    # stat keys, in the same order) nothing but the keys is needed: an unchanged context
    # ends with that walk's digest, and the cache's body is never read.
    summary = cache.summary if use_summary else None
    matched = 0
    result.cold = summary is None and not cache.old
    walked: dict[str, bytes] = {}
    linked = result.linked
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
            if directory != root:
                ContextChanged.check(directory, exc)
            raise unreadable(root, directory, exc) from exc
        try:
            keys: list[Key] = []
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
                    ContextChanged.check(path, exc)
                    raise BuildContextError(
                        f"cannot stat {path}: {exc.strerror}", step="hash context", hint=UNREADABLE_HINT
                    ) from exc
                # The hot loop of a no-op rebuild: one lstat and one tuple per entry, nothing more.
                keys.append((entry.name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
                if st.st_nlink > 1 and S_ISREG(st.st_mode):  # see ContextHash.linked
                    ctime = st.st_ctime_ns
                    ino = st.st_ino if max(st.st_mtime_ns, ctime) < racy_after else -1
                    linked[os.path.join(directory, entry.name)] = (st.st_mode, st.st_size, st.st_mtime_ns, ino, ctime)
                if S_ISDIR(st.st_mode):
                    subdirs.append((os.path.join(directory, entry.name), prefix + entry.name + "/"))
            blob = walked[prefix] = StatCache.key_blob(keys)
            subdirs.sort()  # the walk's order (and so the digest) depends on names only
            stack.extend(reversed(subdirs))
            if summary is not None:
                if (
                    matched < len(summary[2])
                    and summary[2][matched] == prefix
                    and summary[3][matched] == key_hash(blob)
                ):
                    matched += 1
                    continue
                # The first directory unlike the last walk: from here on, the body decides.
                summary = None
                count = _reuse(cache.old, walked, list(walked)[:-1], new, parts)
                files, hits = files + count, hits + count
            cached = cache.old.get(prefix)
            if cached is not None and cached[0] == blob:
                parts.append(cached[1])
                new[prefix] = cached
                files += cached[2]
                hits += cached[2]
                continue
            detail: dict[str, FileEntry] = marshal.loads(cached[3]) if cached is not None else {}
            lines: dict[str, FileEntry] = {}
            kept: dict[str, FileEntry] = {}
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
                        if (
                            known is not None
                            and known[1] != line
                            and (_unsynced(known[0], key, regular) or _xattrs_changed(known[1], line))
                        ):
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
        finally:
            os.close(dir_fd)
    if summary is not None and matched == len(summary[2]):
        result.digest, result.files, result.cache_hits = summary[0], summary[1], summary[1]
        return result
    if summary is not None:  # fewer directories than the last walk: the body decides
        files = hits = _reuse(cache.old, walked, list(walked), new, parts)
    result.files, result.cache_hits, result.bytes_hashed = files, hits, hashed
    text = "".join(parts)
    if collect_paths:
        result.paths = _digest_paths(text, root)
    result.digest = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))
    cache.save(result.digest, files)
    return result


def _digest_paths(text: str, root: str) -> list[tuple[str, str]]:
    """The (path, kind) of every line of a walk's text, names unescaped. A runtime payload
    cannot carry a newline in a file name or symlink target, so those are refused here. Only
    a newline ends a line: a name may hold a CR or another line break (macOS leaves
    ``Icon\\r`` files), which ``str.splitlines`` would cut at."""
    paths: list[tuple[str, str]] = []
    for line in text.split("\n")[:-1]:
        name, _, rest = line.partition("\0")
        name = _unescaped(name)
        if "\n" in name or (rest.startswith("l:") and "\n" in _unescaped(rest)):
            raise BuildContextError(
                f"a file name or symlink target under {root} holds a newline, which a runtime payload cannot carry",
                step="hash runtime payload",
                hint="rename the file, or exclude it (a .dockerignore in the payload, or the payload's exclude list)",
            )
        paths.append((name, rest[0]))
    return paths


__all__ = ["CACHE_VERSION", "ContextHash", "StatCache", "cache_dir", "hash_context", "hash_file"]
