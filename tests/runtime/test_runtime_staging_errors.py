"""A runtime build context that cannot be written is an rtbuild error, not an internal one.

Writing the staged source context could end in ``error: internal error: OSError``: a
payload path that fits the system's limit where it is but not below the staging directory
(``File name too long``), or a full disk under ``XDG_CACHE_HOME``. Both now name the
step and the directory, with a hint, and exit 2 (usage) or 1 (host) as documented.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _tmpfs import small_tmpfs

pytestmark = [pytest.mark.engine]
RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


def _runtime(source: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "RTBUILD_LOAD_PLUGINS": ""}
    argv = [RTBUILD, "runtime", "--base", "busybox:latest", "--repo", "rtbuild-test/rt-staging"]
    argv += ["--source", f"{source}:/opt/x", "--json", "-q"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


def _error(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    document: dict[str, object] = json.loads(proc.stdout)
    return document


def test_a_path_too_long_below_the_staging_directory(docker_engine: str, tmp_path: Path) -> None:
    source = tmp_path / "agent"
    source.mkdir()
    fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    try:  # about 3,900 bytes below the payload: fits here, not below a longer cache path
        for _ in range(195):
            os.mkdir("d" * 19, dir_fd=fd)
            inner = os.open("d" * 19, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(os.open("leaf.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    cache = tmp_path / ("c" * 200)
    proc = _runtime(source, cache)
    error = _error(proc)
    assert proc.returncode == 2 and error["error"] == "BuildContextError", proc.stderr
    assert error["step"] == "write runtime context" and "File name too long" in str(error["message"])
    assert "XDG_CACHE_HOME" in str(error["hint"]) and str(cache) in str(error["message"])


@pytest.fixture
def full_cache(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "small") as mount:
        yield mount


def test_a_full_disk_under_the_staging_directory(docker_engine: str, tmp_path: Path, full_cache: Path) -> None:
    source = tmp_path / "agent"
    source.mkdir()
    (source / "blob.bin").write_bytes(os.urandom(400_000))  # more than the 256 KiB cache holds
    proc = _runtime(source, full_cache)
    error = _error(proc)
    assert proc.returncode == 1 and error["error"] == "BuildFailedError", proc.stderr
    assert error["step"] == "write runtime context" and "No space left on device" in str(error["message"])
    assert "is full" in str(error["hint"]) and str(full_cache) in str(error["hint"])


def test_a_path_too_long_in_the_payload_itself(docker_engine: str, tmp_path: Path) -> None:
    # The hashing said "cannot read <a 4,096-byte path>" with the hint "fix the permissions".
    source = tmp_path / "agent"
    source.mkdir()
    fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    try:  # 20 names of 250 bytes: over the limit, yet shallow (pytest's clean-up copes)
        for _ in range(20):
            os.mkdir("n" * 250, dir_fd=fd)
            inner = os.open("n" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    proc = _runtime(source, tmp_path / "cache")
    error = _error(proc)
    assert proc.returncode == 2 and error["error"] == "BuildContextError", proc.stderr
    assert str(error["message"]).startswith(f"cannot read a directory under {source}: File name too long")
    assert len(str(error["message"])) < 400 and "4,096 bytes" in str(error["hint"])
