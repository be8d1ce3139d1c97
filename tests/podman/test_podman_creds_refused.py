"""``--creds USER:PASSWORD`` through the extra arguments is refused by the Podman builder.

It went onto ``podman build``'s command line, readable by every local user in
``/proc/PID/cmdline`` and ``ps`` for as long as the build ran (masked in rtbuild's own
output since efa207c, but not there). Podman sends ``--creds`` to every registry the build
reaches, so it cannot be turned into an in-memory auth file keyed by the registries rtbuild
can name; the supported way (``podman login``/``docker login``, handed to podman in memory)
is named in the hint.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _podman_support import Names, isolated_env, write_context
from rtbuild import BuildRequest, ConfigError
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]

PASSWORD = "Kx7-creds-never-shown"


@pytest.mark.parametrize("extra", [["--creds", f"rtuser:{PASSWORD}"], [f"--creds=rtuser:{PASSWORD}"]])
def test_creds_in_extra_args_are_refused_before_podman_runs(
    builder: PodmanBuilder, names: Names, tmp_path: Path, extra: list[str]
) -> None:
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN true\n")
    request = BuildRequest(path=str(ctx), tags=[names.new("localhost/rtbuild-test/creds")], extra_build_args=extra)
    for run in (builder.build_request, builder.plan):
        with pytest.raises(ConfigError) as info:
            run(request)
        err = info.value
        assert err.step == "validate request"
        assert "--creds" in str(err) and "command line" in str(err)
        assert err.hint and "podman login" in err.hint and "--authfile" in err.hint
        assert PASSWORD not in f"{err} {err.hint} {err.log_tail}"
    assert not list(Path(builder.log_directory()).glob("build-*creds*.log"))  # podman never ran


def test_the_cli_exits_2_without_showing_the_password(names: Names, tmp_path: Path) -> None:
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN true\n")
    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    tag = names.new("localhost/rtbuild-test/creds")
    env = isolated_env(tmp_path)
    for json_flag in ([], ["--json"]):
        argv = [rtbuild, "build", str(ctx), "-t", tag, "--builder", "podman", f"--extra=--creds=rtuser:{PASSWORD}"]
        done = subprocess.run(argv + json_flag, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        assert "podman login" in done.stdout + done.stderr
