"""Runtime images with thousand-file payloads on the real engine (busybox base):

every file lands with its content and mode, the layer count is bounded, a change to the
first or the last file rebuilds exactly one source layer, an exact hit makes no temporary
directory, and ``rtbuild runtime --source`` takes a directory and an installed distribution.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import RtbuildPluginManager, get_plugin_manager
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image
from rtbuild.runtime._plugin import RuntimeRequirements
from runtime_engine_helpers import counting_builder, docker, layers, remove_repo

pytestmark = [pytest.mark.engine]
BASE = "busybox:latest"
DEST = "/opt/agent"
#: (content sha256, octal mode) by path relative to the payload root
Listing = dict[str, tuple[str, str]]


def make_payload(root: Path, count: int, token: str) -> Listing:
    """``count`` small files, 100 per directory, three directory levels, mixed modes."""
    listing: Listing = {}
    for index in range(count):
        rel = f"pkg{index // 1000}/mod{index // 100 % 10}/f{index:05d}.py"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"# {token} {index}\nVALUE = {index}\n".encode()
        path.write_bytes(data)
        mode = 0o755 if index % 7 == 0 else 0o600 if index % 11 == 0 else 0o644
        path.chmod(mode)
        listing[rel] = (hashlib.sha256(data).hexdigest(), f"{mode:o}")
    return listing


def image_listing(cli: str, image: str, dest: str) -> Listing:
    """Every regular file under ``dest`` in ``image``: content digest and mode, from inside a container."""
    script = (
        f"cd {dest} && find . -type f -exec stat -c '%a %n' {{}} + && echo --- && find . -type f -exec sha256sum {{}} +"
    )
    out = docker(cli, "run", "--rm", image, "sh", "-c", script).stdout
    modes_text, sums_text = out.split("---\n")
    modes = {name[2:]: mode for mode, name in (line.split(" ", 1) for line in modes_text.splitlines())}
    sums = {name[2:]: digest for digest, name in (line.split("  ", 1) for line in sums_text.splitlines())}
    return {rel: (sums[rel], modes[rel]) for rel in sums}


@dataclass
class Agent:
    """A runtime plugin shipping an agent's code: a start script and a payload directory."""

    root: Path
    name: str = "agent"
    order: int = 0

    def requirements(self, config: Config) -> RuntimeRequirements:
        return RuntimeRequirements(
            files={"/usr/local/bin/agent-start": "#!/bin/sh\nexec python3 -m pkg0\n"},
            payloads=[SourcePayload.directory(self.root, DEST)],
        )


class Offer:
    def __init__(self, *plugins: Any) -> None:
        self.plugins = list(plugins)

    @rtbuild.hookimpl
    def runtime_plugins(self, config: Config) -> list[Any]:
        return self.plugins


def _pm(*plugins: Any) -> RtbuildPluginManager:
    return get_plugin_manager(Config(load_plugins=[]), extra_plugins=[Offer(*plugins)])


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The payloads' stat caches and staging directories stay in the test's directory.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def repo(docker_engine: str) -> Iterator[str]:
    name = f"rtbuild-test/rtscale-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


def test_thousand_file_payload_layers_changes_and_exact_hit(
    docker_engine: str, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "agent"
    expected = make_payload(root, 1000, uuid.uuid4().hex)
    config = Config(load_plugins=[])
    pm = _pm(Agent(root))
    builder, runs = counting_builder(pm, config)

    first = build_runtime_image(config, BASE, ["agent"], repo=repo, pm=pm, builder=builder)
    assert first.details["runtime_tier"] == "scratch" and first.details["payload_files"] == 1000
    assert image_listing(docker_engine, first.image, DEST) == expected
    base_layers, image_layers = layers(docker_engine, BASE), layers(docker_engine, first.image)
    # The start script's directory and the payload: two layers for 1,000 files.
    assert len(image_layers) == len(base_layers) + 2 == len(base_layers) + first.details["layers"]

    ordered = sorted(expected)
    for which in (ordered[0], ordered[-1]):
        runs.clear()
        (root / which).write_text(f"# changed {which}\n")
        changed = build_runtime_image(config, BASE, ["agent"], repo=repo, pm=pm, builder=builder)
        assert changed.details["runtime_tier"] == "lock" and runs == [[changed.image]]
        before, after = image_layers, layers(docker_engine, changed.image)
        # Exactly one source layer rebuilt: the payload's (the last one).
        assert len(after) == len(before) and after[:-1] == before[:-1] and after[-1] != before[-1]
        inside = docker(docker_engine, "run", "--rm", changed.image, "cat", f"{DEST}/{which}").stdout
        assert inside == f"# changed {which}\n"
        image_layers = after

    # Exact hit: nothing built, and no temporary directory made (watched, not assumed).
    runs.clear()
    watched_tmp = tmp_path / "tmp"
    watched_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(watched_tmp))
    made: list[Any] = []
    real_mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(a) or real_mkdtemp(*a, **k))
    again = build_runtime_image(config, BASE, ["agent"], repo=repo, pm=pm, builder=builder)
    assert again.details["runtime_tier"] == "exact" and again.cached and runs == []
    assert made == [] and list(watched_tmp.iterdir()) == []


def _distribution_files(name: str) -> Listing:
    dist = metadata.distribution(name)
    listing: Listing = {}
    for item in dist.files or []:
        rel = item.as_posix()
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        path = Path(str(dist.locate_file(item)))
        if path.is_file():
            mode = f"{path.stat().st_mode & 0o7777:o}"
            listing[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), mode)
    return listing


def test_cli_source_with_five_thousand_files_and_a_distribution(docker_engine: str, repo: str, tmp_path: Path) -> None:
    root = tmp_path / "code"
    expected = make_payload(root, 5000, uuid.uuid4().hex)
    (root / "build.log").write_text("not shipped\n")
    args = [
        "runtime",
        "--base",
        BASE,
        "--repo",
        repo,
        "--source",
        f"{root}:{DEST}",
        "--source",
        "pluggy:/opt/site",
        "--exclude",
        "*.log",
        "--json",
    ]
    env = {**os.environ, "RTBUILD_BUILDER": "docker", "RTBUILD_LOAD_PLUGINS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "rtbuild", *args], capture_output=True, text=True, env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["details"]["runtime_tier"] == "scratch"
    image = result["image"]
    assert image_listing(docker_engine, image, DEST) == expected  # build.log excluded
    assert image_listing(docker_engine, image, "/opt/site") == _distribution_files("pluggy")
    # Two payloads, two layers, whatever their size.
    assert len(layers(docker_engine, image)) == len(layers(docker_engine, BASE)) + 2

    again = subprocess.run(
        [sys.executable, "-m", "rtbuild", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert again.returncode == 0, again.stderr
    reused = json.loads(again.stdout)
    assert reused["image"] == image and reused["cached"] is True and reused["details"]["runtime_tier"] == "exact"
