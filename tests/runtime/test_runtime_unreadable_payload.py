"""An unreadable file or directory in a payload names the payload's remedy (--exclude), not
a build context's (.dockerignore at the context root), and the payload's step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import sys
from rtbuild.errors import BuildContextError
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._payload import resolve
try:
    resolve("extra-source", SourcePayload.directory(sys.argv[1], "/opt/agent"))
except BuildContextError as exc:
    print(exc.step)
    print(exc.hint)
"""


def _as_unprivileged(tmp_path: Path, payload: Path) -> list[str]:
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("setpriv (util-linux) is needed to read as root without CAP_DAC_OVERRIDE")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", _PROBE, str(payload)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return proc.stdout.splitlines()


@pytest.mark.parametrize("what", ["file", "directory"])
def test_an_unreadable_path_in_a_payload_points_at_exclude(tmp_path: Path, what: str) -> None:
    payload = tmp_path / "agent"
    payload.mkdir()
    (payload / "ok.py").write_text("ok\n")
    locked = payload / "secret"
    if what == "directory":
        locked.mkdir()
        (locked / "inner").write_text("x\n")
    else:
        locked.write_text("x\n")
    locked.chmod(0)
    try:
        lines = _as_unprivileged(tmp_path, payload)
    finally:
        locked.chmod(0o700)
    assert lines[:1] == ["hash runtime payload"], lines
    assert "--exclude" in lines[1]
