"""The build step pushes again when the registry answers a manifest "blob unknown": the
platforms of one build push their shared layers at once, and docker-registry lost one of
them in about one run of twenty (test_two_platforms_are_two_jobs_and_one_index_under_every_tag
failed with it). Any other push failure still ends the step with buildah's exit code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

STEP = Path(__file__).resolve().parents[2] / "builders" / "kubernetes" / "step-image" / "rtbuild-step"

FAKE_BUILDAH = """#!/bin/sh
# bud: nothing to do; push: the answers listed in $ANSWERS, one per call
case " $* " in *" bud "*) exit 0 ;; esac
n=$(cat "$CALLS" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$CALLS"
answer=$(sed -n "${n}p" "$ANSWERS")
case "$answer" in
ok) for a in "$@"; do [ "$prev" = --digestfile ] && printf 'sha256:abc' > "$a"; prev=$a; done; exit 0 ;;
race) echo 'manifest blob unknown: blob unknown to registry' >&2; exit 125 ;;
*) echo 'unauthorized: authentication required' >&2; exit 125 ;;
esac
"""


def _run(tmp_path: Path, answers: list[str]) -> tuple[subprocess.CompletedProcess[str], int]:
    bin_dir, workspace = tmp_path / "bin", tmp_path / "ws"
    bin_dir.mkdir()
    (workspace / "context").mkdir(parents=True)
    (bin_dir / "buildah").write_text(FAKE_BUILDAH)
    (bin_dir / "buildah").chmod(0o755)
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")  # no real wait between attempts
    (bin_dir / "sleep").chmod(0o755)
    (tmp_path / "answers").write_text("\n".join(answers) + "\n")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls"),
        "ANSWERS": str(tmp_path / "answers"),
        "RTBUILD_WORKSPACE": str(workspace),
        "RTBUILD_TAGS": "127.0.0.1:5000/team/app:1",
        "RTBUILD_TERMINATION_LOG": str(tmp_path / "termination-log"),
        "STORAGE_DRIVER": "vfs",
        "BUILDAH_ISOLATION": "chroot",
    }
    proc = subprocess.run(["sh", str(STEP), "build"], env=env, capture_output=True, text=True, timeout=60)
    calls = int((tmp_path / "calls").read_text()) if (tmp_path / "calls").exists() else 0
    return proc, calls


def test_a_lost_blob_is_pushed_again(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, ["race", "ok"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert calls == 2 and "pushing again (2 of 3)" in proc.stdout
    assert (tmp_path / "termination-log").read_text() == "sha256:abc"


@pytest.mark.parametrize(("answers", "calls_made"), [(["race", "race", "race", "ok"], 3), (["denied", "ok"], 1)])
def test_other_failures_and_a_third_loss_end_the_step(tmp_path: Path, answers: list[str], calls_made: int) -> None:
    proc, calls = _run(tmp_path, answers)
    assert proc.returncode == 125 and calls == calls_made, proc.stdout + proc.stderr
    assert not (tmp_path / "termination-log").exists()
