"""A payload file rewritten with its size and mtime kept reaches the next image, on the real engine.

The staged copy keeps its source's mtime, and the docker client sends a context to
BuildKit incrementally: a file whose size, mode and mtime equal the copy BuildKit kept is
not sent again. A payload file rewritten that way while a build ran (``cp -p``, ``tar x``,
``rsync -a``, or a checkout restoring mtimes) got a new tag on the next request, a new
staged copy, and an image that still held the old bytes (reproduced: 'v1' under the tag
of 'v2'). Such a copy now marks the staging directory for a whole-context send.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image
from runtime_engine_helpers import docker, remove_repo

pytestmark = [pytest.mark.engine]


@pytest.fixture
def rewrite_repo(docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    name = f"rtbuild-test/rt-rewrite-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


def _rewrite_keeping_stat(path: Path, text: str) -> None:
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_rewrite_with_the_old_mtime_reaches_the_next_image(
    docker_engine: str, rewrite_repo: str, tmp_path: Path
) -> None:
    agent = tmp_path / "agent"
    agent.mkdir()
    tool = agent / "tool.txt"
    tool.write_text(f"v1 {uuid.uuid4().hex}\n")
    second = tool.read_text().replace("v1", "v2")
    config = Config(load_plugins=[])
    pm = get_plugin_manager(config)
    builder = pm.create_builder("docker", config)
    original = builder.run

    def run(spec: Any) -> Any:
        if spec.tags[0].rsplit(":", 1)[1].count("_") == 2:  # the source stage: staged already
            _rewrite_keeping_stat(tool, second)
        return original(spec)

    payloads = [SourcePayload.directory(agent, "/opt/agent")]
    builder.run = run
    first = build_runtime_image(
        config, "busybox:latest", [], repo=rewrite_repo, payloads=payloads, pm=pm, builder=builder
    )
    builder.run = original
    show = ["run", "--rm"]
    assert docker(docker_engine, *show, first.image, "cat", "/opt/agent/tool.txt").stdout.startswith("v1")
    assert tool.read_text() == second
    again = build_runtime_image(
        config, "busybox:latest", [], repo=rewrite_repo, payloads=payloads, pm=pm, builder=builder
    )
    assert again.image != first.image
    assert docker(docker_engine, *show, again.image, "cat", "/opt/agent/tool.txt").stdout == second
