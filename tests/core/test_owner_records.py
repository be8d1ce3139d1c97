"""``rtbuild.enginekit`` owner records: what a killed process left is told from what a live
one uses (the Podman sweep and the Docker ssh socket directory both rely on it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rtbuild.enginekit import OWNER_FILE, claim_directory, dead_owner_note


def _claimed_by_child(directory: Path, note: str) -> None:
    code = f"from rtbuild.enginekit import claim_directory; claim_directory({str(directory)!r}, {note!r})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_gone_owner_gives_its_note(tmp_path: Path) -> None:
    _claimed_by_child(tmp_path, "marker-1")  # the child has exited: its pid is gone or reused
    assert dead_owner_note(str(tmp_path)) == "marker-1"


def test_a_live_owner_and_this_process_are_never_dead(tmp_path: Path) -> None:
    claim_directory(str(tmp_path), "mine")
    assert dead_owner_note(str(tmp_path)) is None
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid, started, namespace, _ = (tmp_path / OWNER_FILE).read_text().split()
        stat = Path(f"/proc/{live.pid}/stat").read_text().rpartition(")")[2].split()[19]
        (tmp_path / OWNER_FILE).write_text(f"{live.pid} {stat} {namespace} theirs\n")
        assert dead_owner_note(str(tmp_path)) is None
        # The same pid with another start time is another process: its owner is gone.
        (tmp_path / OWNER_FILE).write_text(f"{live.pid} {int(stat) + 1} {namespace} reused\n")
        assert dead_owner_note(str(tmp_path)) == "reused"
    finally:
        live.kill()
        live.wait()
    assert pid == str(os.getpid()) and started


def test_no_record_or_another_pid_namespace_is_never_dead(tmp_path: Path) -> None:
    assert dead_owner_note(str(tmp_path)) is None
    (tmp_path / OWNER_FILE).write_text("999999 1 pid:[1] elsewhere\n")
    assert dead_owner_note(str(tmp_path)) is None
    (tmp_path / OWNER_FILE).write_text("not a record\n")
    assert dead_owner_note(str(tmp_path)) is None
