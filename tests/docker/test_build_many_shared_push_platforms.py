"""build-many on the real engine and registry: multi-platform entries sharing tags push them once.

Three entries [app:1, app:2] with --platform linux/amd64,linux/arm64 and push: the first
pushes the four platform images and the two indexes; the others (their builds skipped, the
same images) push nothing and read nothing (push_skipped per tag). Before, the core's
push-once rule never saw these pushes (made inside the builder): each further entry read the
registry (7 requests per tag) or, when a tag set differed, pushed everything again.
An entry adding a tag of its own rebuilds on Docker (its skip needs every local tag) and
BuildKit then makes a new image, which is pushed again under the shared tag too (never
stale), so this test keeps the tag sets equal. No QEMU: FROM scratch, COPY only.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import _mp_registry as reg
import docker_build_helpers as h
import pytest
from _registry_support import DOCKER

pytestmark = [pytest.mark.engine, pytest.mark.registry]

images, isolated_dirs = h.images, h.isolated_dirs


def _kinds(stderr: str) -> list[str]:
    kinds = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") in ("push_started", "index_pushed", "push_skipped"):
            kinds.append(f"{event['event']} {event.get('build')} {event.get('image')}")
    return kinds


def test_multi_platform_entries_sharing_a_tag_push_it_once(registry: Any, isolated_dirs: Path, tmp_path: Path) -> None:
    repo = f"{registry.host}/rt-test/shared-mp-{uuid.uuid4().hex[:10]}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    (ctx / "app").write_text(uuid.uuid4().hex)
    platform = "linux/amd64,linux/arm64"
    blocks = [
        f'[[build]]\npath = "{ctx}"\ntags = {json.dumps(tags)}\nplatform = "{platform}"\npush = true\n'
        for tags in [[f"{repo}:1", f"{repo}:2"]] * 3
    ]
    (tmp_path / "images.toml").write_text("\n".join(blocks))
    try:
        proc = subprocess.run(
            [h.RTBUILD, "build-many", str(tmp_path / "images.toml"), "-j", "3", "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(os.environ),
        )
    finally:
        listing = subprocess.run(
            [DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}", repo], capture_output=True, text=True
        ).stdout.split()
        if listing:
            subprocess.run([DOCKER, "rmi", "-f", *listing], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert [b["status"] for b in report["builds"]] == ["ok"] * 3
    kinds = _kinds(proc.stderr)
    count = [k.split()[0] for k in kinds].count
    assert count("push_started") == 4 and count("index_pushed") == 2, "\n".join(kinds)
    assert count("push_skipped") == 4, kinds  # two entries, two tags each
    digests = {b["result"]["details"]["index_digests"][f"{repo}:1"] for b in report["builds"]}
    assert digests == {reg.manifest(f"{repo}:1")[1]}  # every entry names the index the registry holds
    assert set(reg.entries(f"{repo}:2").values()) == set(reg.entries(f"{repo}:1").values())
