"""A file: URL for the vscode archive is read like a download: a regular file, bounded.

file:///dev/zero (or any device) was copied into the download cache without bound until
the disk was full, and a FIFO blocked rtbuild for ever; an http download stops at 4 GiB.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path

import pytest
from rtbuild.errors import DownloadError
from rtbuild_vscode import download
from rtbuild_vscode.download import fetch_verified

SHA = hashlib.sha256(b"the real archive").hexdigest()


@pytest.mark.timeout(120)  # a guard: the old code waited for a writer that never comes
def test_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "archive.tar.gz"
    os.mkfifo(fifo)

    def writer() -> None:  # the old code read what it wrote, then failed on the checksum
        with contextlib.suppress(OSError), open(fifo, "wb") as out:
            out.write(b"x" * 4096)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with pytest.raises(DownloadError, match="not a regular file"):
            fetch_verified(fifo.as_uri(), SHA, cache=tmp_path / "cache")
    finally:
        # Release the writer: hold a read end open until it is done (opened and closed at
        # once, it could come before the writer's open, which then waited for ever).
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            thread.join(timeout=30)
        finally:
            os.close(reader)
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_a_device_is_refused(tmp_path: Path) -> None:
    # /dev/null: a character device that reads empty (the old code copied it, then failed
    # on the checksum; /dev/zero it copied until the disk was full).
    with pytest.raises(DownloadError, match="not a regular file"):
        fetch_verified("file:///dev/null", SHA, cache=tmp_path / "cache")


def test_a_file_over_the_download_bound_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 3 << 20)
    big = tmp_path / "big.tar.gz"
    big.write_bytes(b"\0" * (5 << 20))
    with pytest.raises(DownloadError, match="larger than") as info:
        fetch_verified(big.as_uri(), SHA, cache=tmp_path / "cache")
    assert "so far" in info.value.message
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_a_regular_file_is_still_copied(tmp_path: Path) -> None:
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(b"the real archive")
    cached = fetch_verified(archive.as_uri(), SHA, cache=tmp_path / "cache")
    assert cached.read_bytes() == b"the real archive"
