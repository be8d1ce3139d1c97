"""build-many on the real engine: entries sharing a registry tag with push = true push it once.

Before, each entry pushed it: four entries sharing one tag made four pushes of the same
image (the engine found every layer already there, but each push still asked the registry
for every layer and the manifest).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import pytest
from _registry_support import DOCKER

pytestmark = [pytest.mark.engine, pytest.mark.registry]

images, isolated_dirs = h.images, h.isolated_dirs


def _events(stderr: str, kind: str) -> list[dict[str, object]]:
    found = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == kind:
            found.append(event)
    return found


def test_four_entries_sharing_a_tag_push_it_once(registry: Any, isolated_dirs: Path, tmp_path: Path) -> None:
    name = f"rt-test/shared-{uuid.uuid4().hex[:10]}"
    tag = f"{registry.host}/{name}:1"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nLABEL nonce={uuid.uuid4().hex}\n")
    blocks = [f'[[build]]\npath = "{ctx}"\ntags = ["{tag}"]\npush = true\n' for _ in range(4)]
    (tmp_path / "images.toml").write_text("\n".join(blocks))
    try:
        proc = subprocess.run(
            [h.RTBUILD, "build-many", str(tmp_path / "images.toml"), "-j", "4", "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ),
        )
    finally:
        subprocess.run([DOCKER, "rmi", "-f", tag], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert [b["status"] for b in report["builds"]] == ["ok"] * 4
    assert all(b["result"]["details"].get("pushed") is True for b in report["builds"])
    assert len(_events(proc.stderr, "push_started")) == 1, proc.stderr[-3000:]
    assert len(_events(proc.stderr, "push_skipped")) == 3, proc.stderr[-3000:]
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{name}/manifests/1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        method="HEAD",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # the registry holds the tag
        assert answer.status == 200
