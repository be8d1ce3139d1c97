"""A payload holding rtbuild's own cache or state directory (``--source ~``, a workspace that is
also XDG_CACHE_HOME / XDG_STATE_HOME) leaves them out.

rtbuild writes there while it serves a request: the staged context went into the staging
directory inside the payload, a copy of itself on every build (then 'changed while rtbuild
was using it', on every run); the build log made every request a rebuild; and the host's
digest key (state/rtbuild/digest.key, which keeps build-arg values in labels from being
guessed offline) was copied into the image.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.errors import ConfigError
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image
from rtbuild.runtime._payload import resolve
from runtime_engine_helpers import docker, remove_repo

BASE = "busybox:latest"


def _agent(tmp_path: Path) -> Path:
    agent = tmp_path / "agent"
    (agent / "code").mkdir(parents=True)
    (agent / "code" / "main.py").write_text(f"TOKEN = {uuid.uuid4().hex!r}\n")
    return agent


def test_own_directories_below_a_payload_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = _agent(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(agent / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(agent / "state"))
    spec = SourcePayload.directory(agent, "/opt/agent")
    first = resolve("extra-source", spec)
    # What rtbuild writes there during a build changes neither the digest nor the tree.
    for own in (agent / "cache" / "rtbuild" / "runtime" / "stage", agent / "state" / "rtbuild" / "logs"):
        own.mkdir(parents=True, exist_ok=True)
        (own / "written-by-a-build").write_text("x\n")
    (agent / "state" / "rtbuild" / "digest.key").write_bytes(b"k" * 32)
    again = resolve("extra-source", spec)
    assert again.digest == first.digest and again.files == 1
    names = [rel for rel, _ in again.entries()]
    assert "code/main.py" in names
    assert not [rel for rel in names if rel.startswith(("cache/rtbuild", "state/rtbuild"))]


def test_a_payload_inside_an_own_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inside = tmp_path / "cache" / "rtbuild" / "mine"
    inside.mkdir(parents=True)
    with pytest.raises(ConfigError, match="inside rtbuild's cache directory") as caught:
        resolve("extra-source", SourcePayload.directory(inside, "/opt/x"))
    assert "XDG_CACHE_HOME" in (caught.value.hint or "")


@pytest.fixture
def own_repo(docker_engine: str) -> Iterator[str]:
    name = f"rtbuild-test/rt-own-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


@pytest.mark.engine
def test_own_directories_never_reach_the_image(
    docker_engine: str, own_repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _agent(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(agent / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(agent / "state"))
    config = Config(load_plugins=[])
    pm = get_plugin_manager(config)
    payloads = [SourcePayload.directory(agent, "/opt/agent")]
    assert not (agent / "state").exists()  # made by the request, which must not see it as a change
    results = [build_runtime_image(config, BASE, [], repo=own_repo, payloads=payloads, pm=pm) for _ in range(3)]
    # The first build wrote a log and the digest key into the payload: still the same image.
    assert (agent / "state" / "rtbuild" / "digest.key").exists()
    assert [r.details["runtime_tier"] for r in results[1:]] == ["exact", "exact"]
    assert {r.image for r in results} == {results[0].image}
    listing = docker(docker_engine, "run", "--rm", results[0].image, "find", "/opt/agent").stdout.split()
    assert "/opt/agent/code/main.py" in listing
    assert not [path for path in listing if "/rtbuild" in path], listing
