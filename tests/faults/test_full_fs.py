"""A full log/cache/state filesystem (a small tmpfs, filled up): the build goes on with a
warning, no temporary file is left behind, and a digest label it cannot withdraw goes
with its tags."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import pytest
from _tmpfs import small_tmpfs

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


@pytest.fixture
def full_fs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "small", dirs=("state", "cache"), full=True) as mount:
        yield mount


def test_full_state_and_cache_fs_warns_and_builds(images: h.Images, context: Path, full_fs: Path) -> None:
    env = {"XDG_STATE_HOME": str(full_fs / "state"), "XDG_CACHE_HOME": str(full_fs / "cache")}
    first = h.cli_build(str(context), "-t", images.tag(), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == images.tag()
    assert "cannot write the build log" in first.stderr  # a warning, not an error
    info = h.inspect(images.cli, images.tag())
    assert info is not None
    images.ids.add(info["Id"])
    second = h.cli_build(str(context), "-t", images.tag(), env=env)  # never a stale skip either
    assert second.returncode == 0, second.stderr
    leftovers = [p for p in full_fs.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]
    assert leftovers == []


def test_a_label_that_cannot_be_withdrawn_goes_with_its_tags(
    images: h.Images, context: Path, full_fs: Path, monkeypatch: pytest.MonkeyPatch, edited_meanwhile: Any
) -> None:
    """A file edited between the hash and the engine's read (then written back) with the
    cache full: the withdrawal of the image's digest label could not be written, a warning
    said so, and the next build reused the image holding the edit for the context as it is."""
    import rtbuild.enginekit
    from rtbuild.errors import AgentRuntimeBuildError

    monkeypatch.setenv("XDG_CACHE_HOME", str(full_fs / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(full_fs / "state"))
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY data.txt /data.txt\n")
    data = context / "data.txt"
    data.write_text("one\n")
    h.build(images, context)
    data.write_text("two\n")  # an ordinary rebuild: the tag exists, its digest differs
    with (
        edited_meanwhile(rtbuild.enginekit, "run_build", data, "meanwhile\n", "two\n"),
        pytest.raises(AgentRuntimeBuildError) as info,
    ):
        h.build(images, context)
    assert info.value.step == "withdraw digest label"
    assert "its tags were removed" in info.value.message and info.value.hint
    assert h.inspect(images.cli, images.tag()) is None
    again = h.build(images, context)
    assert not again.cached, "the image holding 'meanwhile' was reused for 'two'"
    shown = h.docker(images.cli, "run", "--rm", images.tag(), "cat", "/data.txt")
    assert shown.stdout == "two\n"


def test_a_post_build_plugin_on_a_full_disk_keeps_its_own_hint(images: h.Images, context: Path, full_fs: Path) -> None:
    """The SBOM plugin cannot write its document (ENOSPC): exit 4, the image usable. The
    hint said to 'fix or disable the plugin', dropping the plugin's own (and that one told
    to set a writable directory, not to free space)."""
    import json

    config = full_fs.parent / "rtbuild.toml"
    config.write_text("[plugins.sbom]\nenabled = true\n")
    env = {"XDG_STATE_HOME": str(full_fs / "state"), "XDG_CACHE_HOME": str(full_fs / "cache")}
    env["RTBUILD_CONFIG"] = str(config)
    out = h.cli_build(str(context), "-t", images.tag(), "--json", "-q", env=env)
    assert out.returncode == 4, out.stderr
    document = json.loads(out.stdout)
    assert document["error"] == "PostBuildError" and document["step"] == "sbom write"
    assert "No space left on device" in document["message"]
    assert document["hint"].startswith("the image is usable; free space on the filesystem of")
    assert "Traceback" not in out.stderr
    assert h.inspect(images.cli, images.tag()) is not None


def test_no_room_for_a_lock_file_warns_and_builds(images: h.Images, context: Path, tmp_path: Path) -> None:
    """A cache filesystem with no inode left (a new tag's lock file, and the locks directory,
    cannot be made): every build of a new tag failed as a configuration error (exit 2) whose
    hint said to make $XDG_CACHE_HOME writable. As a full log directory: a warning."""
    with small_tmpfs(tmp_path / "few-inodes", "1m", inodes=16, dirs=("state", "cache"), full=True) as mount:
        env = {"XDG_STATE_HOME": str(mount / "state"), "XDG_CACHE_HOME": str(mount / "cache")}
        out = h.cli_build(str(context), "-t", images.tag(), env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{images.tag()}\n"
    assert f"cannot make the build lock of {images.tag()}" in out.stderr and "free space there" in out.stderr
    info = h.inspect(images.cli, images.tag())
    assert info is not None
    images.ids.add(info["Id"])
