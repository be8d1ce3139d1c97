"""cacerts behind an authenticating proxy: its credentials reach no layer, history or config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine]
RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


def test_proxy_credentials_reach_no_layer_of_a_cacerts_runtime(docker_engine: str, tmp_path: Path) -> None:
    """cacerts copied HTTPS_PROXY, password included, into the image's ENV: `docker inspect`
    showed it to anyone with the image. Now the variable is withheld (and said so, without
    its value), and passed as a build arg the engine keeps it out of history and config."""
    secret = f"s3cr3t{uuid.uuid4().hex[:8]}"
    proxy = f"http://agent:{secret}@127.0.0.1:9"
    repo = f"rtbuild-test/proxycreds-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HTTPS_PROXY": proxy, "NO_PROXY": "*"}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    argv = [RTBUILD, "runtime", "--base", "busybox:latest", "--plugin", "cacerts", "--repo", repo, "--json"]
    argv += ["--build-arg", f"HTTP_PROXY={proxy}"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    try:
        assert proc.returncode == 0, proc.stderr
        details = json.loads(proc.stdout)["details"]
        tags = [details["exact_tag"], details["lock_tag"]]
        for tag in tags:
            for what in (["image", "inspect", tag], ["history", "--no-trunc", tag]):
                shown = subprocess.run([docker_engine, *what], capture_output=True, text=True, check=True).stdout
                assert secret not in shown, (what, shown[-2000:])
        saved = subprocess.run([docker_engine, "save", tags[0]], capture_output=True, check=True).stdout
        assert secret.encode() not in saved  # no layer, no config blob
        assert secret not in proc.stdout and secret not in proc.stderr
        assert "cacerts: HTTPS_PROXY holds credentials, so it is not copied" in proc.stderr
        for path in (tmp_path / "state").rglob("*"):
            assert not path.is_file() or secret not in path.read_text(errors="replace"), path
    finally:
        out = subprocess.run([docker_engine, "images", "-q", repo], capture_output=True, text=True).stdout.split()
        subprocess.run([docker_engine, "rmi", "-f", *out], capture_output=True, check=False)
