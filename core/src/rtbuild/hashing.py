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
import tempfile
import time
from dataclasses import dataclass
from operator import attrgetter
from stat import S_IFMT, S_IMODE, S_ISDIR, S_ISLNK, S_ISREG

import xxhash

from .dockerignore import PatternMatcher
from .errors import BuildContextError

_Key = tuple[int, int, int, int, int]
#: stat key, content digest, and the entry's line in the digested listing
_Entry = tuple[_Key, str, str]

CACHE_VERSION = 3
_CHUNK = 1 << 20
_NAME = attrgetter("name")
#: Files changed this recently may change again within the filesystem's timestamp
#: granularity without a visible stat change (git's "racy" case): hash them, don't cache.
_RACY_NS = 2_000_000_000


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rtbuild", "context")


def _cache_path(root: str) -> str:
    return os.path.join(cache_dir(), xxhash.xxh3_64_hexdigest(root.encode("utf-8", "surrogateescape")) + ".marshal")


def hash_file(path: str, size: int | None = None) -> str:
    """xxh3-128 hex digest of a file's contents."""
    with open(path, "rb") as handle:
        if size is not None and size <= _CHUNK:
            return xxhash.xxh3_128_hexdigest(handle.read())
        hasher = xxhash.xxh3_128()
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
        return hasher.hexdigest()


@dataclass
class ContextHash:
    """The digest of a context and what it took to compute it."""

    digest: str
    files: int = 0
    bytes_hashed: int = 0
    cache_hits: int = 0
    #: Every included path with its kind ("d", "f", "l", "s"), when asked for.
    paths: list[tuple[str, str]] | None = None


class StatCache:
    """path -> ((size, mtime_ns, ino, ctime_ns, mode), digest, line) for one context.

    Stored with :mod:`marshal`: loading 20,000 entries takes a few milliseconds where
    JSON takes tens, and the no-op check is on the critical path of every rebuild.
    """

    def __init__(self, root: str, *, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled
        self.path = _cache_path(root)
        self.old: dict[str, _Entry] = {}
        self.new: dict[str, _Entry] = {}
        self.dirty = False
        if enabled:
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                data = marshal.loads(handle.read())  # marshal.load(file) reads object by object: slow
        except (OSError, EOFError, ValueError, TypeError):
            return
        valid = isinstance(data, tuple) and len(data) == 3 and data[0] == CACHE_VERSION and data[1] == self.root
        if valid and isinstance(data[2], dict):
            self.old = data[2]

    def save(self) -> None:
        if not self.enabled or not (self.dirty or len(self.new) != len(self.old)):
            return
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".ctx-", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    marshal.dump((CACHE_VERSION, self.root, self.new), handle)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass  # the cache is an optimisation; an unwritable cache dir only costs speed


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
    # any later write moves mtime, so only entries with an older mtime are kept.
    racy_after = time.time_ns() - _RACY_NS
    parts: list[str] = []
    files = hits = hashed = 0
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as scanner:
                listing = sorted(scanner, key=_NAME)
        except OSError as exc:
            raise BuildContextError(
                f"cannot read {directory}: {exc.strerror}", step="hash context", hint="fix the permissions"
            ) from exc
        subdirs: list[tuple[str, str]] = []
        for entry in listing:
            rel = prefix + entry.name
            if excluded is not None and excluded(rel):
                if matcher is not None and entry.is_dir(follow_symlinks=False) and matcher.may_reinclude_below(rel):
                    subdirs.append((entry.path, rel + "/"))
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise BuildContextError(f"cannot stat {entry.path}: {exc.strerror}", step="hash context") from exc
            mode = st.st_mode
            if S_ISREG(mode):
                key = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, mode)
                cached = old.get(rel)
                if cached is not None and cached[0] == key:
                    new[rel] = cached
                    parts.append(cached[2])
                    hits += 1
                else:
                    try:
                        digest = hash_file(entry.path, st.st_size)
                    except OSError as exc:
                        raise BuildContextError(
                            f"cannot read {entry.path}: {exc.strerror}",
                            step="hash context",
                            hint="the engine cannot send unreadable files either: fix permissions or .dockerignore it",
                        ) from exc
                    line = f"{rel}\0f{S_IMODE(mode):o}:{digest}\n"
                    parts.append(line)
                    if st.st_mtime_ns < racy_after:
                        new[rel] = (key, digest, line)
                    cache.dirty = True
                    hashed += st.st_size
                files += 1
            elif S_ISDIR(mode):
                parts.append(f"{rel}\0d{S_IMODE(mode):o}\n")
                subdirs.append((entry.path, rel + "/"))
            elif S_ISLNK(mode):
                parts.append(f"{rel}\0l:{os.readlink(entry.path)}\n")
            else:
                parts.append(f"{rel}\0s{S_IFMT(mode):o}\n")
        stack.extend(reversed(subdirs))
    cache.save()
    result.files, result.cache_hits, result.bytes_hashed = files, hits, hashed
    if collect_paths:
        result.paths = [(line.split("\0", 1)[0], line.split("\0", 1)[1][0]) for line in parts]
    result.digest = xxhash.xxh3_128_hexdigest("".join(parts).encode("utf-8", "surrogateescape"))
    return result


__all__ = ["CACHE_VERSION", "ContextHash", "StatCache", "cache_dir", "hash_context", "hash_file"]
