"""rtbuild's own state damaged between runs (a file truncated, emptied or overwritten by
hand, a disk error): the next build works, says what it repaired, and the no-op skip works
again after it."""

from __future__ import annotations

import os
import subprocess
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


def test_a_withdrawn_label_whose_record_is_emptied_is_built_again(
    images: h.Images, context: Path, isolated_dirs: Path
) -> None:
    """The record withdrawing a label (the context changed while the engine read it),
    emptied by a crash: it read as no record, the label's claim stood, and the next build
    reported 'no input changed: reusing' an image that did not hold its inputs."""
    from rtbuild.enginekit import DIGEST_LABEL, withdraw_digest

    assert h.cli_build(str(context), "-t", images.tag()).returncode == 0
    (context / "app.txt").write_text("version 2\n")
    assert h.cli_build(str(context), "-t", images.tag()).returncode == 0
    info = h.inspect(images.cli, images.tag())
    assert info is not None
    assert withdraw_digest(info["Id"], info["Config"]["Labels"][DIGEST_LABEL])  # what confirm_label writes
    record = isolated_dirs / "XDG_CACHE_HOME" / "rtbuild" / "image-digests" / info["Id"].removeprefix("sha256:")
    record.write_bytes(b"")
    again = h.cli_build(str(context), "-t", images.tag())
    assert again.returncode == 0, again.stderr
    assert "no input changed" not in again.stderr
    assert f"input-digest record {record} is damaged" in again.stderr
    last = h.cli_build(str(context), "-t", images.tag())
    assert "no input changed: reusing" in last.stderr and "damaged" not in last.stderr


@pytest.mark.parametrize(
    "where",
    [
        "XDG_CACHE_HOME/rtbuild/context/*.marshal",
        "XDG_CACHE_HOME/rtbuild/dockerfiles/*.json",
        "XDG_CACHE_HOME/rtbuild/entry-points-*.json",
        "XDG_CACHE_HOME/rtbuild/docker-clients.json",
        "XDG_STATE_HOME/rtbuild/digest.key",
        "XDG_STATE_HOME/rtbuild/metrics.jsonl",
    ],
)
def test_a_fifo_in_place_of_a_state_file_is_not_waited_on(
    images: h.Images, context: Path, isolated_dirs: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a FIFO waits for a writer: every build hung for good (before) at the stat
    cache, the Dockerfile analysis, the entry-point scan, the docker client probe, the
    digest key, or after the build at the metrics line."""
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(isolated_dirs / "XDG_STATE_HOME" / "rtbuild" / "metrics.jsonl"))
    assert h.cli_build(str(context), "-t", images.tag()).returncode == 0
    found = sorted(isolated_dirs.glob(where))
    assert found, where
    found[0].unlink()
    os.mkfifo(found[0])
    (context / "app.txt").write_text("version 2\n")
    proc = subprocess.run(
        [h.RTBUILD, "build", str(context), "-t", images.tag()], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
