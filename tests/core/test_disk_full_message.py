"""A build that ran out of disk names the ENOSPC line in its message, from a word's start."""

from __future__ import annotations

from rtbuild import BuildFailedError
from rtbuild.enginekit import build_error

#: Podman 4.3 on a full storage (a RUN writing past it), as rtbuild's log kept it.
LINES = [
    "STEP 1/3: FROM docker.io/rtbuild/busybox:amd64",
    "STEP 2/3: RUN dd if=/dev/zero of=/big bs=1M count=80",
    "dd: error writing '/big': No space left on device",
    'time="2026-12-03T12:08:55Z" level=error msg="error unmounting container: unmounting build container'
    ' \\"6ca211486ace193197234a034654deb1bd842835f0fcbad76a08f8616328cb92\\": write'
    ' /tmp/ph/alt/rr/vfs-layers/.tmp-mountpoints.json34738193: no space left on device"',
    'Error: building at STEP "RUN dd if=/dev/zero of=/big bs=1M count=80": while running runtime: exit status 1',
]


def test_the_enospc_line_is_cut_at_a_word_not_inside_one() -> None:
    """The message ended '(ting container: unmounting build container ...)': the line's last
    200 characters, cut inside 'unmounting'."""
    error = build_error(LINES, 1, log_path=None, engine="podman")
    assert isinstance(error, BuildFailedError)
    detail = error.message.split(" failed with exit code 1 (", 1)[1]
    assert detail.startswith("…container: unmounting build container")  # whole words only
    assert detail.endswith('no space left on device")')
    assert len(detail) <= 202
