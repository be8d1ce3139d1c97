"""A Podman (Buildah) step that fails for the host's reason, not the Dockerfile's: a full disk
(ENOSPC, for real through /dev/full) or a SIGKILL (exit 137, the OOM killer's signal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _podman_support import Names, podman, write_context
from rtbuild import BuildFailedError, BuildRequest
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
