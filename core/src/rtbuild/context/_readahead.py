"""Reading a directory's files ahead of hashing them, when they are not in memory.

From a cold page cache, hashing one file after another waits on the disk once per file;
readahead asked for a batch (``POSIX_FADV_WILLNEED``) lets the disk serve them together.
A first build of a context nobody has read lately (BuildKit's incremental sync only
compares stat data, so it keeps nothing in memory) hashes it this way.
"""

from __future__ import annotations

import contextlib
import os

#: Where a probe reads its byte (shared by threads: the byte is never looked at).
_PROBE = bytearray(1)


def uncached(fd: int) -> bool:
    """Whether reading the file's first byte would wait for the disk (when unsure: yes).

    The probe's read itself starts the disk read; on a fast disk it can complete before
    the probe answers, and the file then looks cached: advice is skipped only where the
    disk was fast enough not to need it."""
    try:
        os.preadv(fd, [_PROBE], 0, os.RWF_NOWAIT)
    except (OSError, AttributeError):  # BlockingIOError: not in memory; others: RWF_NOWAIT unsupported
        return True
    return False


class ReadAhead:
    """Opens the files a directory's walk will hash, a batch ahead, and asks the kernel to
    read a batch in when it is not in memory. The descriptors are the ones hashed, so no
    file is opened twice.

    Measured on the bench host with :func:`rtbuild.context.hash_context` over 470 MB in
    20,002 files: from a dropped page cache 2.15-2.2 s before, 0.86 s now (and 0.53 s of
    CPU instead of 1.15 s: blocking reads fault their pages in one by one); from the page
    cache 0.318-0.330 s before, 0.313-0.318 s now (opening by name in the directory saves
    the path lookups the probes cost).
    """

    BATCH = 32

    def __init__(self, directory: str, names: list[str], dir_fd: int | None = None) -> None:
        self.directory = directory
        self.names = names  # in the order the walk takes them
        self.next = 0
        self.fds: dict[str, int] = {}
        #: The directory's descriptor: the walk's own (borrowed, left open) when given.
        self.dir_fd = dir_fd
        self._own_dir_fd = dir_fd is None

    def take(self, name: str) -> int | None:
        """The open descriptor of ``name`` (the caller closes it), or ``None``."""
        fd = self.fds.pop(name, None)
        if fd is None and not self.fds and self.next < len(self.names):
            self._open_batch()
            fd = self.fds.pop(name, None)
        return fd

    def _open_batch(self) -> None:
        batch = self.names[self.next : self.next + self.BATCH]
        self.next += len(batch)
        if self.dir_fd is None:
            # Opened relative to the directory: the kernel resolves one name per file, not
            # every component of its path.
            try:
                self.dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                self.next = len(self.names)  # hashing opens each by path, and reports why not
                return
        for name in batch:
            try:
                self.fds[name] = os.open(name, os.O_RDONLY, dir_fd=self.dir_fd)
            except OSError:
                continue  # hashing opens it again, and reports the error with its hint
        opened = list(self.fds.values())
        # The advice costs about 1.4 us a file even when every page is cached (7% of
        # hashing from the page cache): ask only when the batch's first or last file is not
        # in memory (a read that must not wait says so; files written together are
        # usually cached or evicted together).
        if opened and (uncached(opened[0]) or uncached(opened[-1])):
            for fd in opened:
                with contextlib.suppress(OSError):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        if self.dir_fd is not None and self._own_dir_fd:
            os.close(self.dir_fd)
        self.dir_fd = None


__all__ = ["ReadAhead", "uncached"]
