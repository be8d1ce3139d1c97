"""Build logs are readable by their owner only, whatever the umask.

A build log holds the engine's output (masked, but a value rtbuild cannot know, say a token
a RUN step fetched, is shown as printed). docs/security.md said logs had "the permissions of
your umask" (0644 with the usual 022: readable by every local user); ``log_path_for``
creates them 0600 through ``mkstemp`` and ``run_build`` writes into that file, so the docs
were wrong, not the code. This test holds the documented mode in place.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from rtbuild.enginekit import log_path_for, run_build


def test_a_build_log_is_0600_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = log_path_for(str(tmp_path / "logs"), "reg.example/app:1")
        assert path is not None
        # run_build adds --iidfile before the last argument (an engine's context).
        result = run_build(
            [sys.executable, "-c", "print('step output')", "CONTEXT"], env={}, log_path=path, stream=False
        )
    finally:
        os.umask(old)
    assert result.returncode == 0
    assert "step output" in Path(path).read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
