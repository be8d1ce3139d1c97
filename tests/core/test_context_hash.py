"""Context hashing: what changes the digest, what does not, and the stat cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from rtbuild.context import _hashing, _readahead
from rtbuild.context._dockerignore import PatternMatcher
from rtbuild.context._hashing import StatCache, cache_dir, hash_context
from rtbuild.context._validate import context_digest
from rtbuild.errors import BuildContextError

OLD = 1_600_000_000  # an mtime well outside the "racy" window, so entries are cached


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Files made by make_context have an old mtime but a ctime of now, which the change
    # detector rightly treats as "racy" for two seconds; these tests are about the cache
    # itself (tests/faults/test_change_detection.py covers the racy window).
    monkeypatch.setattr(_hashing, "_RACY_NS", 0)


def make_context(root: Path) -> Path:
    ctx = root / "ctx"
    (ctx / "src" / "pkg").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /app\n")
    (ctx / "src" / "main.py").write_text("print('hi')\n")
    (ctx / "src" / "pkg" / "data.bin").write_bytes(os.urandom(3 << 20))  # several read chunks
    (ctx / "notes.log").write_text("log\n")
    for path in ctx.rglob("*"):
        os.utime(path, (OLD, OLD))
    return ctx


def digest(ctx: Path) -> str:
    return context_digest(str(ctx)).digest


def test_same_tree_same_digest_and_cache_hits(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    first = context_digest(str(ctx))
    assert first.files == 4 and first.cache_hits == 0 and first.bytes_hashed > 3 << 20
    second = context_digest(str(ctx))
    assert second.digest == first.digest
    assert second.cache_hits == 4 and second.bytes_hashed == 0  # nothing re-read
    cache_files = os.listdir(cache_dir())
    assert len(cache_files) == 1 and not cache_files[0].endswith(".tmp")
    assert set(StatCache(str(ctx)).file_entries()) == {"Dockerfile", "src/main.py", "src/pkg/data.bin", "notes.log"}


def test_a_cache_another_process_wrote_replaces_the_one_held_in_memory(tmp_path: Path) -> None:
    # This process keeps the cache it last read or wrote; once another process has
    # rewritten the file, the file is read again (its identity changed), so the other
    # process's hashing is reused instead of being redone from the older copy.
    import subprocess
    import sys

    ctx = make_context(tmp_path)
    digest(ctx)
    target = ctx / "src" / "pkg" / "data.bin"
    target.write_bytes(os.urandom(3 << 20))
    os.utime(target, (OLD, OLD))
    script = (
        "import sys; from rtbuild.context import _hashing; _hashing._RACY_NS = 0; "
        "from rtbuild.context._validate import context_digest; print(context_digest(sys.argv[1]).digest)"
    )
    out = subprocess.run([sys.executable, "-c", script, str(ctx)], capture_output=True, text=True, check=True)
    after = context_digest(str(ctx))
    assert after.digest == out.stdout.strip()
    assert after.bytes_hashed == 0 and after.cache_hits == 4  # the other process's work, not a re-read


def test_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    before = digest(ctx)
    (ctx / "notes.log").write_text("other")
    os.utime(ctx / "notes.log", (OLD, OLD))
    for name in os.listdir(cache_dir()):
        Path(cache_dir(), name).write_bytes(b"\x00garbage")
    assert digest(ctx) != before


def test_content_change_with_same_size_and_mtime_is_seen(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    before = digest(ctx)
    target = ctx / "src" / "main.py"
    target.write_text("print('ho')\n")  # same size
    os.utime(target, (OLD, OLD))  # same mtime: only ctime (and maybe inode) tell
    assert digest(ctx) != before


@pytest.mark.parametrize(
    "change",
    ["content", "new_file", "new_empty_dir", "delete", "rename", "chmod", "symlink", "dockerfile"],
)
def test_each_change_changes_digest(tmp_path: Path, change: str) -> None:
    ctx = make_context(tmp_path)
    (ctx / "link").symlink_to("src/main.py")
    before = digest(ctx)
    if change == "content":
        (ctx / "src" / "pkg" / "data.bin").write_bytes(b"x")
    elif change == "new_file":
        (ctx / "src" / "new.py").write_text("")
    elif change == "new_empty_dir":
        (ctx / "empty").mkdir()
    elif change == "delete":
        (ctx / "notes.log").unlink()
    elif change == "rename":
        (ctx / "notes.log").rename(ctx / "notes2.log")
    elif change == "chmod":
        (ctx / "src" / "main.py").chmod(0o755)
    elif change == "symlink":
        (ctx / "link").unlink()
        (ctx / "link").symlink_to("notes.log")
    elif change == "dockerfile":
        (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /app2\n")
    assert digest(ctx) != before


def test_ignored_files_do_not_count(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    (ctx / ".dockerignore").write_text("*.log\nbuild\n")
    (ctx / "build").mkdir()
    (ctx / "build" / "out.o").write_text("1")
    before = digest(ctx)
    (ctx / "notes.log").write_text("changed a lot\n")
    (ctx / "other.log").write_text("new\n")
    (ctx / "build" / "out.o").write_text("2")
    (ctx / "build" / "more.o").write_text("3")
    assert digest(ctx) == before
    (ctx / ".dockerignore").write_text("*.log\n")  # .dockerignore itself always counts
    assert digest(ctx) != before


def test_dockerfile_counts_even_when_ignored(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    (ctx / ".dockerignore").write_text("Dockerfile\n")
    before = digest(ctx)
    (ctx / "Dockerfile").write_text("FROM busybox:latest\n")
    assert digest(ctx) != before


def test_reinclusion_below_excluded_directory(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    (ctx / ".dockerignore").write_text("src\n!src/main.py\n")
    result = hash_context(str(ctx), PatternMatcher(["src", "!src/main.py"]))
    assert result.files == 4  # Dockerfile, .dockerignore, notes.log, src/main.py
    before = digest(ctx)
    (ctx / "src" / "pkg" / "data.bin").write_bytes(b"ignored")
    assert digest(ctx) == before
    (ctx / "src" / "main.py").write_text("changed\n")
    assert digest(ctx) != before


def test_missing_dockerfile_is_a_context_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BuildContextError, match="no Dockerfile"):
        context_digest(str(tmp_path / "empty"))


def test_unwritable_cache_dir_still_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = make_context(tmp_path)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert digest(ctx) == digest(ctx)


@pytest.mark.parametrize("length", [0, 1, 4095, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20])
def test_hash_file_is_the_digest_of_the_whole_file(tmp_path: Path, length: int) -> None:
    import xxhash

    data = os.urandom(length)
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = xxhash.xxh3_128_hexdigest(data)
    assert _hashing.hash_file(str(path)) == expected
    assert _hashing.hash_file(str(path), length) == expected
    # A size from an older stat (the file grew since): still the whole file.
    assert _hashing.hash_file(str(path), max(0, length - 7)) == expected
    assert _hashing.hash_file(str(path), 0) == expected


def test_hash_file_of_a_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _hashing.hash_file(str(tmp_path / "missing"), 3)


# --- reading ahead -------------------------------------------------------------------------


def _many_files(root: Path, count: int) -> Path:
    ctx = root / "many"
    (ctx / "sub").mkdir(parents=True)
    for index in range(count):
        (ctx / f"f{index:03d}.txt").write_bytes(os.urandom(index * 97))  # f000 is empty
    (ctx / "sub" / "inner.txt").write_text("inner\n")
    os.symlink("f001.txt", ctx / "link")
    for path in [*ctx.rglob("*"), ctx]:
        os.utime(path, (OLD, OLD), follow_symlinks=False)
    return ctx


def _resident(path: Path) -> bool:
    """Whether any page of ``path`` is in the page cache, asked without reading it
    (``mincore`` of a mapping; a read, even ``RWF_NOWAIT``, would start the disk read)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            vector = ctypes.create_string_buffer(pages)
            assert libc.mincore(address, size, vector) == 0, os.strerror(ctypes.get_errno())
            return any(byte & 1 for byte in vector.raw)
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)


def _memory_backed(path: Path) -> bool:
    """Whether ``path`` lives on a filesystem whose pages are its only copy (tmpfs, ramfs):
    there nothing can be dropped from the page cache, so there is no point in trying."""
    from rtbuild.context._watch import filesystem_type

    return filesystem_type(str(path)) in ("tmpfs", "ramfs")


def _drop_from_page_cache(files: list[Path], attempts: int = 50) -> int:
    """Drop the files' pages (clean after a sync) so the next read waits on the disk; the
    number of files still in memory after ``attempts`` tries."""
    for _ in range(attempts):
        os.sync()
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        kept = sum(_resident(path) for path in files)
        if kept == 0:
            return 0
        time.sleep(0.1)
    return kept


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_reading_ahead_in_batches_gives_the_same_digest_and_closes_every_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory of more files than several read-ahead batches: the digest is the one
    computed a file at a time, and no descriptor is left open (nor one per batch)."""
    ctx = _many_files(tmp_path, 3 * _readahead.ReadAhead.BATCH + 5)
    before = _open_fds()
    batched = hash_context(str(ctx), use_cache=False)
    assert _open_fds() == before
    monkeypatch.setattr(_readahead.ReadAhead, "take", lambda self, name: None)  # open by path, one by one
    assert hash_context(str(ctx), use_cache=False).digest == batched.digest
    assert batched.files == 3 * _readahead.ReadAhead.BATCH + 5 + 1


def test_a_file_that_cannot_be_opened_ahead_is_still_reported_with_its_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _many_files(tmp_path, 40)
    real_open = os.open

    def refuse_one(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if str(path).endswith("f007.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    before = _open_fds()
    monkeypatch.setattr(_hashing.os, "open", refuse_one)
    with pytest.raises(BuildContextError, match=r"f007\.txt") as caught:
        hash_context(str(ctx), use_cache=False)
    monkeypatch.undo()
    assert "fix permissions" in (caught.value.hint or "")
    assert _open_fds() == before  # the rest of the batch was closed


def test_files_not_in_memory_are_read_ahead_and_cached_ones_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a cold page cache the walk asks the kernel to read a batch ahead (one blocking
    read per file waits on the disk each time); from a warm one it asks nothing, since the
    advice has a cost even then."""
    ctx = _many_files(tmp_path, 50)
    files = sorted(path for path in ctx.rglob("*") if path.is_file() and not path.is_symlink())
    if _memory_backed(ctx):
        pytest.skip(f"{tmp_path} is memory-backed (tmpfs): nothing to read ahead")
    kept = _drop_from_page_cache([path for path in files if path.stat().st_size])
    if kept == len(files) - 1:  # all but the empty f000
        pytest.skip(f"{tmp_path} keeps every page in memory (tmpfs?): nothing to read ahead")
    # The kernel may keep a page busy for a while (a journal commit under load): a file
    # left in memory would rightly not be read ahead, and the count below would miss it.
    assert kept == 0, f"{kept} files stayed in the page cache after repeated POSIX_FADV_DONTNEED"
    advised: list[int] = []
    real_fadvise = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        if advice == os.POSIX_FADV_WILLNEED:
            advised.append(fd)
        real_fadvise(fd, offset, length, advice)

    real_uncached = _readahead.uncached

    def cold_as_mincore_says(fd: int) -> bool:
        # The probe's own read starts the disk read, and on a fast disk that read can
        # finish before the probe answers: then a cold file looks cached (seen here in 1
        # of 4 runs). Asked before the probe, mincore makes the cold half deterministic;
        # the warm half below still runs the real probe alone.
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        cold = path.stat().st_size > 0 and not _resident(path)
        return real_uncached(fd) or cold

    monkeypatch.setattr(_hashing.os, "posix_fadvise", record)
    monkeypatch.setattr(_readahead, "uncached", cold_as_mincore_says)
    cold = hash_context(str(ctx), use_cache=False)
    assert len(advised) >= 50, "the cold files were read one blocking read at a time"
    monkeypatch.setattr(_readahead, "uncached", real_uncached)
    advised.clear()
    assert hash_context(str(ctx), use_cache=False).digest == cold.digest
    assert advised == [], "read-ahead was asked for files already in memory"


def test_the_walks_close_every_directory_descriptor_even_when_hashing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walks list each directory through a descriptor of it (entries are stat-ed
    relative to it): none is left open by a hash, a stat snapshot or the label check,
    nor when a file deep in the tree cannot be read."""
    from rtbuild.context._snapshot import stat_snapshot

    ctx = _many_files(tmp_path, 10)
    (ctx / "sub" / "deeper").mkdir()
    (ctx / "sub" / "deeper" / "late.txt").write_text("late\n")
    before = _open_fds()
    walked = hash_context(str(ctx), use_cache=False)
    assert stat_snapshot(str(ctx)).keys
    assert walked.changed_since_walk() is None
    assert _open_fds() == before

    def unreadable(fd: int, size: int | None) -> str:
        os.close(fd)
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patch:
        patch.setattr(_hashing, "_hash_fd", unreadable)
        with pytest.raises(BuildContextError, match="cannot read"):
            hash_context(str(ctx), use_cache=False)
    assert _open_fds() == before


def _tree(root: Path, files: dict[str, str], links: dict[str, str]) -> Path:
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    for name, target in links.items():
        (root / name).symlink_to(target)
    return root


def test_a_newline_in_a_name_or_link_target_cannot_spell_another_tree(tmp_path: Path) -> None:
    """Each entry is one digest line: unescaped, the link `0 -> "X\\n1"` beside a file `b`
    wrote the same text as the link `0 -> X` beside a file `1\\nb` with the same contents."""
    one = _tree(tmp_path / "one", {"1\nb": "same"}, {"0": "X"})
    two = _tree(tmp_path / "two", {"b": "same"}, {"0": "X\n1"})
    assert hash_context(str(one)).digest != hash_context(str(two)).digest


def test_a_backslash_n_in_a_name_is_not_a_newline(tmp_path: Path) -> None:
    newline = _tree(tmp_path / "newline", {"a\nb": "same"}, {})
    backslash = _tree(tmp_path / "backslash", {"a\\nb": "same"}, {})
    assert hash_context(str(newline)).digest != hash_context(str(backslash)).digest
    paths = hash_context(str(backslash), collect_paths=True).paths
    assert paths == [("a\\nb", "f")]
