"""A socket or device node in a context reaches the image as an empty file with the node's
permission bits (BuildKit; checked on Docker 20.10), so those bits are an input: a chmod of
the node alone must change the digest, or the next build reuses an image holding the old mode."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from rtbuild.context import _hashing
from rtbuild.context._hashing import hash_context


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_hashing, "_RACY_NS", 0)  # the stat cache vouches for what it saw


def _socket_in(ctx: Path) -> Path:
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    here = os.getcwd()
    os.chdir(ctx)  # AF_UNIX paths are short: bind by a relative name
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind("agent.sock")
        sock.close()
    finally:
        os.chdir(here)
    return ctx / "agent.sock"


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_chmod_of_a_socket_alone_changes_the_digest(tmp_path: Path, use_cache: bool) -> None:
    node = _socket_in(tmp_path / "ctx")
    os.chmod(node, 0o755)
    before = hash_context(str(tmp_path / "ctx"), use_cache=use_cache).digest
    os.chmod(node, 0o700)
    after = hash_context(str(tmp_path / "ctx"), use_cache=use_cache).digest
    assert after != before
    os.chmod(node, 0o755)
    assert hash_context(str(tmp_path / "ctx"), use_cache=use_cache).digest == before


def test_a_socket_and_a_fifo_with_one_mode_still_differ(tmp_path: Path) -> None:
    _socket_in(tmp_path / "a")
    os.chmod(tmp_path / "a" / "agent.sock", 0o644)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    os.mkfifo(tmp_path / "b" / "agent.sock", 0o644)
    os.chmod(tmp_path / "b" / "agent.sock", 0o644)
    assert hash_context(str(tmp_path / "a")).digest != hash_context(str(tmp_path / "b")).digest
