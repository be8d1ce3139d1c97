"""The docker builder answers the runtime exact hit's two questions (the base image's ID,
then whether the tag made from it exists) in one engine round trip once it has seen the
pair, and never answers "present" from anything but a fresh engine answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import docker_build_helpers as h
import pytest
from rtbuild import Config
from rtbuild_docker import lookahead
from rtbuild_docker.builder import DockerBuilder
from rtbuild_docker.engine import EngineAPI

pytestmark = pytest.mark.engine

BASE = "busybox:latest"


@pytest.fixture
def tag(docker_engine: str) -> Iterator[str]:
    name = f"rtbuild-test/lookahead-{uuid.uuid4().hex[:12]}:exact"
    h.docker(docker_engine, "tag", BASE, name)
    yield name
    h.docker(docker_engine, "rmi", name, check=False)


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every request sent to the engine."""
    sent: list[str] = []
    real = EngineAPI._send

    def recording(self: EngineAPI, path: str, method: str = "GET") -> Any:
        sent.append(path)
        return real(self, path, method)

    monkeypatch.setattr(EngineAPI, "_send", recording)
    return sent


def _builder() -> DockerBuilder:
    return DockerBuilder.from_config(Config(), "docker")


def test_the_second_pair_takes_one_round_trip(tag: str, requests: list[str]) -> None:
    builder = _builder()
    base_id = builder.image_id(BASE)
    assert base_id and base_id.startswith("sha256:")
    assert builder.image_exists(tag, pull_from_repo=False)
    assert len(requests) == 2  # one after the other: nothing learnt yet
    requests.clear()
    assert builder.image_id(BASE) == base_id
    assert len(requests) == 2  # both inspects sent before either answer is read
    assert any(tag.split(":")[0] in path for path in requests)
    requests.clear()
    assert builder.image_exists(tag, pull_from_repo=False)
    assert requests == []  # answered by the early answer


def test_an_image_gone_since_is_asked_again(tag: str, requests: list[str], docker_engine: str) -> None:
    builder = _builder()
    builder.image_id(BASE)
    builder.image_exists(tag, pull_from_repo=False)
    h.docker(docker_engine, "rmi", tag)
    builder.image_id(BASE)  # the early answer now says "absent": it is not used
    requests.clear()
    assert not builder.image_exists(tag, pull_from_repo=False)
    assert len(requests) == 1


def test_an_early_answer_is_used_once_and_only_while_fresh(
    tag: str, requests: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = _builder()
    builder.image_id(BASE)
    builder.image_exists(tag, pull_from_repo=False)
    builder.image_id(BASE)
    requests.clear()
    assert builder.image_exists(tag, pull_from_repo=False)
    assert builder.image_exists(tag, pull_from_repo=False)
    assert len(requests) == 1  # the second check asks the engine: an early answer serves once
    monkeypatch.setattr(lookahead, "FRESH_S", 0.0)
    builder.image_id(BASE)
    requests.clear()
    assert builder.image_exists(tag, pull_from_repo=False)
    assert len(requests) == 1  # too old to use
