"""A base image only in a registry: re-tagging it there rebuilds the runtime image.

The lock hash took the engine's ID of the base, and a base that Docker's BuildKit fetched
for a build has none (BuildKit keeps it in its own store, not in ``docker images``): the
reference alone counted, so after the base's tag moved in its registry every request was
an exact hit of the runtime built on the old base, while BuildKit itself would have built
on the new one. The registry's manifest digest counts now.
"""

from __future__ import annotations

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


def _push_base(docker: str, tag: str, mark: str, tmp_path: Path) -> None:
    """``tag`` in the registry: busybox with /base-mark holding ``mark``; no local copy left."""
    ctx = tmp_path / f"base-{mark}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {mark} > /base-mark\n")
    for argv in (["build", "-q", "-t", tag, str(ctx)], ["push", tag], ["rmi", tag]):
        proc = subprocess.run([docker, *argv], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr


def test_a_base_re_tagged_in_its_registry_rebuilds_the_runtime(
    docker_engine: str, registry: Any, tmp_path: Path
) -> None:
    base = registry.ref(f"rt-test/base-{uuid.uuid4().hex[:8]}") + ":1"
    repo = registry.ref(f"rt-test/onbase-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "RTBUILD_LOAD_PLUGINS": ""}
    argv = [RTBUILD, "runtime", "--base", base, "--repo", repo, "--json"]
    made: list[str] = []
    try:
        _push_base(docker_engine, base, "first", tmp_path)
        results = []
        for mark in ("first", "again", "second"):
            if mark == "second":
                _push_base(docker_engine, base, "second", tmp_path)  # the tag moves in the registry
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
            assert proc.returncode == 0, proc.stderr
            result = json.loads(proc.stdout)["details"]
            made += [result["exact_tag"], result["lock_tag"]]
            shown = subprocess.run(
                [docker_engine, "run", "--rm", result["exact_tag"], "cat", "/base-mark"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            results.append((result["runtime_tier"], result["base_image_id"], shown.stdout.strip()))
        (tier1, id1, mark1), (tier2, id2, mark2), (tier3, id3, mark3) = results
        assert subprocess.run([docker_engine, "image", "inspect", base], capture_output=True).returncode != 0
        assert tier1 == "scratch" and mark1 == "first" and tier2 == "exact" and mark2 == "first"
        assert (tier3, mark3) != ("exact", "first"), results  # was an exact hit holding the old base
        assert mark3 == "second", results
        assert id1 is not None and id1.startswith("sha256:") and id2 == id1 and id3 != id1, results
    finally:
        subprocess.run([docker_engine, "rmi", "-f", *set(made)], capture_output=True, check=False)
