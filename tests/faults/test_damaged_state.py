"""rtbuild's own state damaged between runs (a file truncated, emptied or overwritten by
hand, a disk error): the next build works, says what it repaired, and the no-op skip works
again after it."""

from __future__ import annotations

from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


@pytest.mark.parametrize("damaged", [b"", b"short", b"k" * 300], ids=["empty", "short", "too-long"])
def test_a_damaged_digest_key_is_replaced(images: h.Images, context: Path, isolated_dirs: Path, damaged: bytes) -> None:
    """A short key kept every label from matching (every build ran, silently, for good); a
    key over 64 bytes failed every build as an internal error ('maximum key length is 64
    bytes', blamed on the builder)."""
    assert h.cli_build(str(context), "-t", images.tag()).returncode == 0
    key = isolated_dirs / "XDG_STATE_HOME" / "rtbuild" / "digest.key"
    assert key.stat().st_size == 32
    key.write_bytes(damaged)
    first = h.cli_build(str(context), "-t", images.tag())
    assert first.returncode == 0, first.stderr
    assert "digest key" in first.stderr and "damaged" in first.stderr
    assert key.stat().st_size == 32 and key.stat().st_mode & 0o777 == 0o600
    again = h.cli_build(str(context), "-t", images.tag())
    assert again.returncode == 0, again.stderr
    assert "no input changed: reusing" in again.stderr and "damaged" not in again.stderr
