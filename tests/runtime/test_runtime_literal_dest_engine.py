"""Payload and file destinations reach the image as written, on the real engine.

The engines expand variables and read quotes and backslashes in a COPY's arguments, even
in the JSON form. A payload's default destination is its directory's name, so
``--source './$HOME'`` landed in /opt/rtbuild/payload/ itself (next to, or over, other
payloads), ``./back\\slash`` in .../backslash, and ``./a"b`` failed the build with the
engine's lexer error. A name that is not UTF-8 (a Dockerfile is UTF-8) became U+FFFD.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.errors import ConfigError
from rtbuild.runtime import RuntimeRequirements, SourcePayload
from rtbuild.runtime._build import build_runtime_image
from runtime_engine_helpers import docker, remove_repo

NAMES = ("$HOME", "back\\slash", 'a"b', "it's", "${X:-y}")


class _Files:
    name, order = "odd-files", 0

    def requirements(self, config: Config) -> RuntimeRequirements:
        return RuntimeRequirements(files={"/opt/$HOME/tool.sh": "#!/bin/sh\necho tool\n"})


class _Offer:
    @rtbuild.hookimpl
    def runtime_plugins(self, config: Config) -> list[Any]:
        return [_Files()]


@pytest.fixture
def literal_repo(docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    name = f"rtbuild-test/rt-literal-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


@pytest.mark.engine
def test_destinations_are_taken_literally(docker_engine: str, literal_repo: str, tmp_path: Path) -> None:
    payloads = []
    for index, name in enumerate(NAMES):
        directory = tmp_path / f"p{index}" / name
        directory.mkdir(parents=True)
        (directory / "f.txt").write_text(f"{name}\n")
        payloads.append(SourcePayload.directory(directory))
    config = Config(load_plugins=[])
    pm = get_plugin_manager(config, extra_plugins=[_Offer()])
    result = build_runtime_image(config, "busybox:latest", ["odd-files"], repo=literal_repo, payloads=payloads, pm=pm)
    found = docker(docker_engine, "run", "--rm", result.image, "find", "/opt", "-type", "f").stdout.splitlines()
    expected = {f"/opt/rtbuild/payload/{name}/f.txt" for name in NAMES} | {"/opt/$HOME/tool.sh"}
    assert set(found) == expected


def test_a_destination_that_is_not_utf8_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    directory = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"bad\xffname"))
    os.mkdir(directory)
    config = Config(load_plugins=[])
    pm = get_plugin_manager(config, load_entrypoints=False)
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        build_runtime_image(
            config, "busybox:latest", [], repo="rt/test", payloads=[SourcePayload.directory(directory)], pm=pm
        )
    assert "PATH:/IMAGE/DIR" in (info.value.hint or "")
