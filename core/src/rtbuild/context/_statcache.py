"""The persistent stat cache of a context's hash walk (see :mod:`rtbuild.context._hashing`).

One file per context directory under ``$XDG_CACHE_HOME/rtbuild/context``, replaced
atomically: a small head, then the body.

- The **head** is the last walk's summary: its digest, its file count, and for every
  directory it walked, in walk order, the directory's prefix and the xxh3-128 of its
  stat keys. A walk whose directories match it one by one has the same digest, so an
  unchanged context never reads the body: 9-10 ms of a CLI no-op of 20,002 files went
  to reading and unmarshalling the whole 5 MB file.
- The **body** is ``dir -> (keys, listing, files, detail)``, read only when a directory
  changed: its unchanged directories' listings and its unchanged files' digests.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import struct
import threading
from stat import S_ISREG

import xxhash

from rtbuild._framework.atomic import try_atomic_write
from rtbuild._framework.paths import cache_dir as _cache_dir
from rtbuild.context._snapshot import KEYS_FORMAT

#: (name, mode, size, mtime_ns, inode, ctime_ns) of one directory entry
Key = tuple[str, int, int, int, int, int]
#: an entry's key and its line in the digested listing
FileEntry = tuple[Key, str]
#: keys blob (b"" = compare file by file), listing, regular files, marshalled detail
DirEntry = tuple[bytes, str, int, bytes]
#: digest, files, the walked directories' prefixes and key hashes in walk order
Summary = tuple[str, int, tuple[str, ...], tuple[bytes, ...]]

#: 8: lines carry extended attributes; a 7 cache vouched for lines made without them.
CACHE_VERSION = 8
#: The head's length, before the head.
_HEAD_LEN = struct.Struct("<I")
#: Read with the length: a head of up to ~1,500 directories needs no second read.
_FIRST_READ = 1 << 16
#: Stat caches kept, one per context directory, the least recently used going first when a
#: new one is written: contexts in temporary directories (a runtime image's dependency
#: stage, a platform's per-sandbox checkouts) left one file each, forever. Losing one only
#: costs that context a full hash on its next build.
MAX_CONTEXT_CACHES = 2048


def cache_dir() -> str:
    return str(_cache_dir("context"))


def cache_path(root: str) -> str:
    return os.path.join(cache_dir(), xxhash.xxh3_64_hexdigest(root.encode("utf-8", "surrogateescape")) + ".marshal")


def key_hash(blob: bytes) -> bytes:
    """What the head keeps of a directory's keys blob (``b""``, a racy directory's blob,
    stays ``b""``: it never matches a fresh one)."""
    return xxhash.xxh3_128_digest(blob) if blob else b""


def _head_end(data: bytes) -> int | None:
    """Where the head ends (and the body starts) in a file starting with ``data``;
    ``None`` when ``data`` is too short to hold the head's length."""
    if len(data) < _HEAD_LEN.size:
        return None
    return _HEAD_LEN.size + int(_HEAD_LEN.unpack_from(data)[0])


def parse_head(data: bytes) -> tuple[object, ...] | None:
    """The head tuple ``(version, root, digest, files, prefixes, hashes)`` at the start of
    ``data``; ``None`` when ``data`` does not start with a whole head."""
    end = _head_end(data)
    if end is None or len(data) < end:
        return None
    try:
        head = marshal.loads(data[_HEAD_LEN.size : end])
    except (EOFError, ValueError, TypeError):
        return None
    return head if isinstance(head, tuple) and len(head) == 6 else None


def cache_format(data: bytes) -> tuple[object, object] | None:
    """``(version, root)`` of a stat cache file's contents, of this format or an older
    one (a single marshalled ``(version, root, dirs)``); ``None`` when it is neither."""
    head = parse_head(data)
    if head is not None:
        return head[0], head[1]
    try:
        old = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    return (old[0], old[1]) if isinstance(old, tuple) and len(old) == 3 else None


class StatCache:
    """One context's stat cache: :attr:`summary` from the head, :attr:`old` (the body,
    ``dir -> (keys, listing, files, detail)``) loaded on first use.

    ``keys`` is the marshalled list of every entry's (name, mode, size, mtime_ns, inode,
    ctime_ns); when a directory's fresh keys compare equal byte for byte, its ``listing``
    (the lines it adds to the digest) is reused as is and nothing below it is re-read.
    ``detail`` (marshalled ``name -> (key, line)``) is only unpacked for a directory that
    changed, so unchanged files in it are not re-hashed.
    """

    def __init__(self, root: str, *, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled
        self.path = cache_path(root)
        self._old: dict[str, DirEntry] | None = None if enabled else {}
        #: No cache file existed for this context: writing one may push out the oldest.
        self._first = False
        self.new: dict[str, DirEntry] = {}
        self.dirty = False
        #: The last walk's summary (``None``: none usable).
        self.summary: Summary | None = None
        if enabled:
            self._load_head()

    @property
    def old(self) -> dict[str, DirEntry]:
        """The body (read now if it was not yet)."""
        if self._old is None:
            self._old = self._load_body()
        return self._old

    def _valid(self, head: tuple[object, ...] | None) -> bool:
        return head is not None and head[0] == CACHE_VERSION and head[1] == self.root

    def _load_head(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO in its place: not waited on
        except OSError as exc:
            self._old = {}
            self._first = isinstance(exc, FileNotFoundError)
            return
        try:
            st = os.fstat(fd)
            if not S_ISREG(st.st_mode):
                raise OSError(f"{self.path} is not a regular file")
            key = _file_key(st)
            loaded = _LOADED.get(self.path)
            if loaded is not None and loaded[0] == key:
                # This process wrote or read this very file: no read, no unmarshal.
                self.summary, self._old = loaded[1], loaded[2]
                _remember(self.path, key, self.summary, self._old)  # now the most recently used
                return
            data = os.pread(fd, _FIRST_READ, 0)
            need = _head_end(data)
            if need is not None and len(data) < need <= key[1]:
                data += os.pread(fd, need - len(data), len(data))
        except OSError:
            self._old = {}
            return
        finally:
            os.close(fd)
        head = parse_head(data)
        if not self._valid(head):
            self._old = {}  # no cache of this format: nothing in the body to trust either
            return
        self.summary = _summary_of(head)
        _remember(self.path, key, self.summary, None)

    def _load_body(self) -> dict[str, DirEntry]:
        try:
            with open(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
                st = os.fstat(handle.fileno())
                if not S_ISREG(st.st_mode):
                    return {}
                key, data = _file_key(st), handle.read()
        except OSError:
            return {}
        head = parse_head(data)
        if not self._valid(head):
            return {}
        try:
            body = marshal.loads(memoryview(data)[_head_end(data) :])
        except (EOFError, ValueError, TypeError):
            return {}
        if not isinstance(body, dict):
            return {}
        # Any version of the body is correct to use: every entry is checked against fresh
        # stat keys before it is trusted (the file may have been replaced since the head).
        _remember(self.path, key, _summary_of(head), body)
        return body

    @staticmethod
    def key_blob(keys: list[Key]) -> bytes:
        """The bytes a directory's stat keys are compared by (unchanged directory: equal
        bytes). Marshal format 2 has no back-references, so no per-object lookup: about 40%
        cheaper than the default, and the hottest call of a no-op after the stat itself. A
        blob of another format only compares unequal once: that directory is then checked
        file by file against its detail, without reading any file, and stored again."""
        return marshal.dumps(keys, KEYS_FORMAT)

    def file_entries(self) -> dict[str, FileEntry]:
        """Every cached file as ``relative path -> (key, line)`` (for tests and tools)."""
        out: dict[str, FileEntry] = {}
        for prefix, entry in self.old.items():
            for name, item in marshal.loads(entry[3]).items():
                if S_ISREG(item[0][1]):
                    out[prefix + name] = item
        return out

    def save(self, digest: str = "", files: int = 0) -> None:
        """Write :attr:`new` when it differs from what was read, with the summary of the
        walk that made it (``digest``, ``files``; without a digest, no summary)."""
        if not self.enabled or not (self.dirty or len(self.new) != len(self.old)):
            return
        prefixes = tuple(self.new) if digest else ()
        hashes = tuple(key_hash(entry[0]) for entry in self.new.values()) if digest else ()
        head = marshal.dumps((CACHE_VERSION, self.root, digest, files, prefixes, hashes))
        data = _HEAD_LEN.pack(len(head)) + head + marshal.dumps(self.new)
        # The cache is an optimisation; an unwritable cache dir only costs speed.
        if try_atomic_write(self.path, data):
            with contextlib.suppress(OSError):
                summary: Summary | None = (digest, files, prefixes, hashes) if digest else None
                _remember(self.path, _file_key(os.stat(self.path)), summary, self.new)
            if self._first:
                self._first = False
                from rtbuild._framework.paths import keep_newest

                keep_newest(
                    os.path.dirname(self.path),
                    keep=MAX_CONTEXT_CACHES - 1,  # and this one
                    select=lambda name: name.endswith(".marshal"),
                    spare=self.path,
                    last_use=True,
                )


def _summary_of(head: tuple[object, ...] | None) -> Summary | None:
    if head is None:
        return None
    digest, files, prefixes, hashes = head[2:]
    if not (isinstance(digest, str) and digest and isinstance(files, int)):
        return None
    if not (isinstance(prefixes, tuple) and isinstance(hashes, tuple) and len(prefixes) == len(hashes)):
        return None
    return digest, files, prefixes, hashes


#: The last stat cache each recent file held in this process: ``path -> (file key,
#: summary, body or None)``. A long-lived caller (a service, a batch, the benchmarks)
#: checks the same contexts again and again; the file's identity (inode, size, mtime,
#: ctime) says whether it is still the one this process read or wrote.
_LOADED: dict[str, tuple[tuple[int, int, int, int], Summary | None, dict[str, DirEntry] | None]] = {}
_LOADED_MAX = 16
_LOADED_GUARD = threading.Lock()


def _file_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remember(
    path: str, key: tuple[int, int, int, int], summary: Summary | None, body: dict[str, DirEntry] | None
) -> None:
    with _LOADED_GUARD:  # batch builds hash contexts on several threads
        _LOADED.pop(path, None)
        if len(_LOADED) >= _LOADED_MAX:
            del _LOADED[next(iter(_LOADED))]  # the least recently used
        _LOADED[path] = (key, summary, body)


__all__ = [
    "CACHE_VERSION",
    "DirEntry",
    "FileEntry",
    "Key",
    "StatCache",
    "Summary",
    "cache_dir",
    "cache_format",
    "cache_path",
    "key_hash",
    "parse_head",
]
