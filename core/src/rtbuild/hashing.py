"""Content hashing of a build context, with a persistent stat cache.

The walk uses ``os.scandir`` and honours .dockerignore exactly as the engine does
(:mod:`rtbuild.dockerignore`). File contents are hashed with xxh3-128; a file whose
(size, mtime_ns, inode, ctime_ns) is unchanged since the last walk is not read again.
The cache lives under ``$XDG_CACHE_HOME/rtbuild/context`` (or ``~/.cache/rtbuild``), one
file per context directory, replaced atomically.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import xxhash

from .dockerignore import PatternMatcher
from .errors import BuildContextError

CACHE_VERSION = 1
_CHUNK = 1 << 20
#: Files changed this recently may change again within the filesystem's timestamp
#: granularity without a visible stat change (git's "racy" case): hash them, don't cache.
_RACY_NS = 2_000_000_000

#: (size, mtime_ns, inode, ctime_ns, hex digest)
_Entry = list[Any]


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rtbuild", "context")


def _cache_path(root: str) -> str:
    return os.path.join(cache_dir(), xxhash.xxh3_64_hexdigest(root.encode("utf-8", "surrogateescape")) + ".json")


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
    """path -> (size, mtime_ns, ino, ctime_ns, digest) for one context directory."""

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
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == CACHE_VERSION and data.get("root") == self.root:
            entries = data.get("entries")
            if isinstance(entries, dict):
                self.old = entries

    def digest(self, rel: str, full: str, st: os.stat_result, now_ns: int) -> tuple[str, bool]:
        """The content digest of ``full``; ``True`` when it came from the cache."""
        key = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        cached = self.old.get(rel)
        if cached is not None and tuple(cached[:4]) == key:
            self.new[rel] = cached
            return str(cached[4]), True
        digest = hash_file(full, st.st_size)
        # A write in the same clock tick as the last one could leave the key unchanged;
        # any later write moves mtime, so an old mtime makes the entry safe to keep.
        if now_ns - st.st_mtime_ns > _RACY_NS:
            self.new[rel] = [*key, digest]
        self.dirty = True
        return digest, False

    def save(self) -> None:
        if not self.enabled or not (self.dirty or len(self.new) != len(self.old)):
            return
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".ctx-", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"version": CACHE_VERSION, "root": self.root, "entries": self.new}, handle)
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
    """
    root = os.path.abspath(root)
    matcher = matcher if matcher else None
    cache = StatCache(root, enabled=use_cache)
    result = ContextHash(digest="")
    now_ns = time.time_ns()
    hasher = xxhash.xxh3_128()
    entries: list[tuple[str, str]] = []
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            scanner = os.scandir(directory)
        except OSError as exc:
            raise BuildContextError(
                f"cannot read {directory}: {exc.strerror}", step="hash context", hint="fix the permissions"
            ) from exc
        with scanner:
            for entry in scanner:
                rel = prefix + entry.name
                excluded = matcher is not None and matcher.excluded(rel)
                is_dir = entry.is_dir(follow_symlinks=False)
                if excluded:
                    if is_dir and matcher is not None and matcher.may_reinclude_below(rel):
                        stack.append((entry.path, rel + "/"))
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    raise BuildContextError(f"cannot stat {entry.path}: {exc.strerror}", step="hash context") from exc
                mode = stat.S_IMODE(st.st_mode)
                if is_dir:
                    entries.append((rel, f"d{mode:o}"))
                    stack.append((entry.path, rel + "/"))
                elif stat.S_ISREG(st.st_mode):
                    try:
                        digest, hit = cache.digest(rel, entry.path, st, now_ns)
                    except OSError as exc:
                        raise BuildContextError(
                            f"cannot read {entry.path}: {exc.strerror}",
                            step="hash context",
                            hint="the engine cannot send unreadable files either: fix permissions or .dockerignore it",
                        ) from exc
                    result.files += 1
                    if hit:
                        result.cache_hits += 1
                    else:
                        result.bytes_hashed += st.st_size
                    entries.append((rel, f"f{mode:o}:{digest}"))
                elif stat.S_ISLNK(st.st_mode):
                    entries.append((rel, "l:" + os.readlink(entry.path)))
                else:
                    entries.append((rel, f"s{stat.S_IFMT(st.st_mode):o}"))
    entries.sort()
    if collect_paths:
        result.paths = [(rel, desc[0]) for rel, desc in entries]
    for rel, desc in entries:
        hasher.update(rel.encode("utf-8", "surrogateescape"))
        hasher.update(b"\0")
        hasher.update(desc.encode("utf-8", "surrogateescape"))
        hasher.update(b"\n")
    cache.save()
    result.digest = hasher.hexdigest()
    return result


__all__ = ["CACHE_VERSION", "ContextHash", "StatCache", "cache_dir", "hash_context", "hash_file"]
