"""A payload directory's mode reaches the image on the real engine, also when it is the only change.

BuildKit keeps a COPY cached when only a directory's mode changed in a build context it
synchronised before (moby/buildkit#7176). The runtime source context is one staging
directory reused across builds, so a `chmod 700 sub` in a payload gave a new tag whose
image still had `sub` at 0755: an image under a content-hash tag that does not hold that
content.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image
from runtime_engine_helpers import docker, remove_repo

pytestmark = [pytest.mark.engine]
BASE = "busybox:latest"


@pytest.fixture
def modes_repo(docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # The staging directory (the context the engine synchronises) is this test's own.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    name = f"rtbuild-test/rt-modes-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


def _modes(cli: str, image: str) -> list[str]:
    out = docker(cli, "run", "--rm", image, "stat", "-c", "%a %n", "/opt/agent/sub", "/opt/agent/sub/deep").stdout
    return out.split()[::2]


def test_a_directory_mode_change_alone_reaches_the_image(docker_engine: str, modes_repo: str, tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    (agent / "sub" / "deep").mkdir(parents=True)
    (agent / "sub" / "deep" / "tool.py").write_text(f"TOKEN = {uuid.uuid4().hex!r}\n")
    for path in (agent, agent / "sub", agent / "sub" / "deep"):
        path.chmod(0o755)
    config = Config(load_plugins=[])
    pm = get_plugin_manager(config)
    payloads = [SourcePayload.directory(agent, "/opt/agent")]

    def build() -> tuple[str, str]:
        result = build_runtime_image(config, BASE, [], repo=modes_repo, payloads=payloads, pm=pm)
        return result.image, str(result.details["runtime_tier"])

    first, _ = build()
    assert _modes(docker_engine, first) == ["755", "755"]
    seen = {first}
    # Each step changes only directory modes (the last two come back to earlier layouts).
    for sub, deep in (("700", "755"), ("750", "755"), ("755", "700"), ("755", "755"), ("700", "755")):
        (agent / "sub").chmod(int(sub, 8))
        (agent / "sub" / "deep").chmod(int(deep, 8))
        image, tier = build()
        assert _modes(docker_engine, image) == [sub, deep], (sub, deep, tier)
        seen.add(image)
    assert len(seen) == 4  # 755/755 and 700/755 came back to their earlier tags

    # Back to the plain layout with new content: the tree returns to its unkeyed name.
    (agent / "sub").chmod(0o755)
    (agent / "sub" / "deep" / "tool.py").write_text("TOKEN = 'changed'\n")
    image, tier = build()
    assert tier == "lock" and _modes(docker_engine, image) == ["755", "755"]
