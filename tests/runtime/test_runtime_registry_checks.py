"""The registry is asked once per runtime tag, and one failure to ask is said once.

A request that had to build asked the registry for the exact tag twice (before taking the
build lock and again once it held it), so a registry refusing the credentials or down
cost two round trips and printed the same warning twice. Once the lock is held, only the
engine is asked again: what the lock's holder built is local.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.registry]
RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


def test_a_refused_registry_check_is_made_and_reported_once_per_tag(
    docker_engine: str, auth_registry: Any, tmp_path: Path
) -> None:
    config = tmp_path / "docker-config"
    config.mkdir()
    pair = base64.b64encode(f"{auth_registry.username}:not-the-password".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": pair}}}))
    repo = auth_registry.ref(f"rt-test/checks-{uuid.uuid4().hex[:8]}")
    payload = tmp_path / "agent"
    payload.mkdir()
    (payload / "tool.py").write_text(f"TOKEN = {uuid.uuid4().hex!r}\n")
    env = {**os.environ, "DOCKER_CONFIG": str(config), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["RTBUILD_LOAD_PLUGINS"] = ""
    argv = [RTBUILD, "runtime", "--base", "busybox:latest", "--repo", repo, "--source", f"{payload}:/opt/x", "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["details"]["runtime_tier"] == "scratch"
    lines = [json.loads(line).get("line", "") for line in proc.stderr.splitlines() if line.startswith("{")]
    warned = [line for line in lines if line.startswith("rtbuild: cannot check ")]
    exact, lock = result["details"]["exact_tag"], result["details"]["lock_tag"]
    assert [line.split()[3] for line in warned] == [exact, lock], warned
    assert all("refused the credentials" in line and "not-the-password" not in line for line in warned)
    subprocess.run([docker_engine, "rmi", "-f", exact, lock], capture_output=True, check=False)
