"""A Podman (Buildah) step that fails for the host's reason, not the Dockerfile's: a full disk
(ENOSPC, for real through /dev/full) or a SIGKILL (exit 137, the OOM killer's signal)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from _podman_support import Names, podman, write_context
from _tmpfs import small_tmpfs
from rtbuild import BuildFailedError, BuildRequest, EngineUnavailableError, PushError, RegistryError
from rtbuild.enginekit import DISK_FULL_HINT, KILLED_HINT
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]


def _failure(builder: PodmanBuilder, names: Names, ctx: Path) -> BuildFailedError:
    tag = names.new()
    with pytest.raises(BuildFailedError) as info:
        builder.build_request(BuildRequest(path=str(ctx), tags=[tag]))
    assert podman("image", "exists", tag, check=False).returncode != 0
    return info.value


def test_a_full_disk_is_not_blamed_on_the_command(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    run = "RUN dd if=/dev/zero of=/dev/full bs=1k count=1"
    error = _failure(builder, names, write_context(tmp_path / "full", f"FROM busybox:latest\n{run}\n"))
    assert error.step == run
    assert "No space left on device" in error.message and error.hint == DISK_FULL_HINT
    # The words in the command's own text (Buildah repeats it in its error line) are not a full disk.
    said = "RUN test 'no space left on device' = x"
    error = _failure(builder, names, write_context(tmp_path / "said", f"FROM busybox:latest\n{said}\n"))
    assert error.hint is not None and error.hint.startswith("fix the command")


def test_a_killed_step_points_at_memory(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    ctx = write_context(tmp_path / "killed", "FROM busybox:latest\nRUN sh -c 'kill -9 $$' || exit $?\n")
    error = _failure(builder, names, ctx)
    assert "exit code 137" in error.message and error.hint == KILLED_HINT


def test_a_full_tmpdir_in_push_and_pull_is_not_blamed_on_the_registry(
    builder: PodmanBuilder, names: Names, tmp_path: Path, registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """containers/image copies each layer a push sends (and a pull's blobs) into $TMPDIR. On a
    full disk the PushError's hint said to check the registry accepts pushes, the pull's that
    the registry listed the image: podman can reach it. Both now say this machine's disk is
    full and where to free space."""
    ctx = write_context(tmp_path / "big", "FROM busybox:latest\nCOPY big /big\n")
    (ctx / "big").write_bytes(os.urandom(2 * 1024 * 1024))  # random: no compression below 1 MiB
    tag = registry.ref(names.new("rt-podman-test/full").split("/", 1)[1])
    names.made.append(tag)
    builder.build_request(BuildRequest(path=str(ctx), tags=[tag]))
    with small_tmpfs(tmp_path / "tmp", size="1m") as small:
        monkeypatch.setenv("TMPDIR", str(small))
        with pytest.raises(PushError) as pushed:
            builder.push(tag)
        assert "no space left on device" in "\n".join(pushed.value.log_tail or []).lower()
        assert pushed.value.hint and "disk is full" in pushed.value.hint and str(small) in pushed.value.hint
        monkeypatch.delenv("TMPDIR")
        builder.push(tag)  # the registry was fine all along
        podman("rmi", tag)
        monkeypatch.setenv("TMPDIR", str(small))
        with pytest.raises(RegistryError) as pulled:
            builder.podman.pull(tag)
        assert pulled.value.hint and "disk is full" in pulled.value.hint and str(small) in pulled.value.hint


def test_a_tmpdir_podman_cannot_use_is_said_not_an_internal_error(
    builder: PodmanBuilder, names: Names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rtbuild gives each podman call a TMPDIR of its own under $TMPDIR (else /var/tmp). When
    that could not be made (full, missing) the build and ``rtbuild exists``'s pull failed as
    ``internal error: OSError: [Errno 28] No space left on device`` with a hint to report the
    builder's authors; now it says which directory and what to do, before podman runs."""
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN true\n")
    tag = names.new()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "absent"))
    with pytest.raises(EngineUnavailableError) as missing:
        builder.build_request(BuildRequest(path=str(ctx), tags=[tag], no_cache=True))
    assert str(tmp_path / "absent") in missing.value.message and missing.value.hint
    assert "does not exist" in missing.value.hint
    with pytest.raises(EngineUnavailableError) as pulled:
        builder.podman.pull("docker.io/rtbuild/busybox:arm64")
    assert pulled.value.step == "prepare podman temp directory"
    with small_tmpfs(tmp_path / "tmp", full=True) as small:
        monkeypatch.setenv("TMPDIR", str(small))
        with pytest.raises(EngineUnavailableError) as full:
            builder.build_request(BuildRequest(path=str(ctx), tags=[tag], no_cache=True))
        assert full.value.hint and "is full" in full.value.hint and str(small) in full.value.hint
        assert "No space left on device" in full.value.message
    assert podman("image", "exists", tag, check=False).returncode != 0
