"""``enginekit.run_build(pass_fds=...)``: the engine inherits exactly the descriptors it is
given (a backend's in-memory ``--authfile``), and no others."""

from __future__ import annotations

import os
from pathlib import Path

from rtbuild.enginekit import run_build


def _reader(fd: int) -> list[str]:
    """A stand-in engine that prints what its descriptor ``fd`` holds (run_build adds
    ``--iidfile FILE`` before the last argument: they land in ``$0``/``$1``)."""
    return ["sh", "-c", f"cat /proc/self/fd/{fd} || echo unreadable", "context"]


def test_a_passed_descriptor_reaches_the_engine_and_others_do_not(tmp_path: Path) -> None:
    fd = os.memfd_create("rtbuild-test", os.MFD_CLOEXEC)
    try:
        os.write(fd, b"held-in-memory\n")
        passed = run_build(_reader(fd), env={}, log_path=None, stream=False, pass_fds=(fd,))
        kept = run_build(_reader(fd), env={}, log_path=None, stream=False)
    finally:
        os.close(fd)
    assert passed.returncode == 0 and passed.lines == ["held-in-memory"]
    assert "held-in-memory" not in kept.lines and "unreadable" in kept.lines
