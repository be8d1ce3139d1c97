"""Runtime images on the real engine with tiny in-process runtime plugins on busybox:latest:
the three reuse tiers, selection, unselected plugins, conflicts, registry lookups."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import RtbuildPluginManager, get_plugin_manager
from rtbuild.errors import PluginError
from rtbuild.runtime._build import build_runtime_image
from rtbuild.runtime._plugin import RuntimeRequirements
from runtime_engine_helpers import counting_builder, docker, inspect, layers, remove_repo

pytestmark = [pytest.mark.engine]
BASE = "busybox:latest"
TOKEN = uuid.uuid4().hex[:10]  # fresh dependency layers per session


@dataclass
class Tiny:
    """A runtime plugin with one dependency RUN layer and one source file."""

    name: str
    source: str = "v1"
    order: int = 0
    calls: int = 0

    def requirements(self, config: Config) -> RuntimeRequirements:
        self.calls += 1
        return RuntimeRequirements(
            dockerfile=f"RUN echo {self.name}-{TOKEN} > /deps-{self.name}.txt",
            env={f"TINY_{self.name.upper()}": "1"},
            files={f"/opt/tiny/{self.name}.txt": f"{self.name} {self.source}\n"},
        )


class Offer:
    def __init__(self, *plugins: Any) -> None:
        self.plugins = list(plugins)

    @rtbuild.hookimpl
    def runtime_plugins(self, config: Config) -> list[Any]:
        return self.plugins


@pytest.fixture
def repo(docker_engine: str) -> Iterator[str]:
    name = f"rtbuild-test/rt-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


def _pm(*plugins: Any) -> RtbuildPluginManager:
    # No installed plugin but ours (builders are never filtered): no other runtime plugin interferes.
    config = Config(load_plugins=[])
    return get_plugin_manager(config, extra_plugins=[Offer(*plugins)])


def _config() -> Config:
    return Config(load_plugins=[])


def test_three_tiers_on_the_engine(docker_engine: str, repo: str) -> None:
    alpha, beta = Tiny("alpha"), Tiny("beta")
    pm, config = _pm(alpha, beta), _config()
    builder, runs = counting_builder(pm, config)

    scratch = build_runtime_image(config, BASE, ["alpha", "beta"], repo=repo, pm=pm, builder=builder)
    exact_tag, lock_tag = scratch.details["exact_tag"], scratch.details["lock_tag"]
    assert scratch.details["runtime_tier"] == "scratch" and not scratch.cached
    assert runs == [[lock_tag], [exact_tag]]  # dependency image first, then the source layers on it
    assert scratch.image == exact_tag and set(scratch.tags) == {exact_tag, lock_tag}
    lock_layers, exact_layers = layers(docker_engine, lock_tag), layers(docker_engine, exact_tag)
    assert exact_layers[: len(lock_layers)] == lock_layers and len(exact_layers) > len(lock_layers)
    out = docker(docker_engine, "run", "--rm", exact_tag, "sh", "-c", "cat /deps-alpha.txt /opt/tiny/beta.txt")
    assert out.stdout.split("\n")[:2] == [f"alpha-{TOKEN}", "beta v1"]

    # Exact hit: the engine builds nothing, the image is the same one.
    runs.clear()
    before = inspect(docker_engine, exact_tag)
    exact = build_runtime_image(config, BASE, ["beta", "alpha"], repo=repo, pm=pm, builder=builder)
    assert exact.details["runtime_tier"] == "exact" and exact.cached and exact.image == exact_tag
    assert runs == []
    after = inspect(docker_engine, exact_tag)
    assert before is not None and after is not None
    assert (after["Id"], after["Created"]) == (before["Id"], before["Created"])

    # Lock hit: a source-only change rebuilds only the layers above the lock image.
    runs.clear()
    beta.source = "v2"
    lock = build_runtime_image(config, BASE, ["alpha", "beta"], repo=repo, pm=pm, builder=builder)
    assert lock.details["runtime_tier"] == "lock" and not lock.cached
    assert lock.details["lock_tag"] == lock_tag and lock.image != exact_tag
    assert runs == [[lock.image]]
    new_layers = layers(docker_engine, lock.image)
    assert new_layers[: len(lock_layers)] == lock_layers  # identical dependency layers
    assert new_layers != exact_layers
    assert "beta v2" in docker(docker_engine, "run", "--rm", lock.image, "cat", "/opt/tiny/beta.txt").stdout

    # --force-rebuild bypasses reuse: both builds run again.
    runs.clear()
    forced = build_runtime_image(config, BASE, ["alpha", "beta"], repo=repo, pm=pm, builder=builder, force_rebuild=True)
    assert forced.details["runtime_tier"] == "scratch" and len(runs) == 2


def test_selection_changes_tags_and_unselected_plugins_change_nothing(docker_engine: str, repo: str) -> None:
    config = _config()
    spy = Tiny("spy")
    alone = build_runtime_image(config, BASE, ["alpha"], repo=repo, pm=_pm(Tiny("alpha")))
    both = build_runtime_image(config, BASE, ["alpha", "beta"], repo=repo, pm=_pm(Tiny("alpha"), Tiny("beta")))
    assert both.details["lock_hash"] != alone.details["lock_hash"]
    assert both.image != alone.image

    pm = _pm(Tiny("alpha"), spy)
    builder, runs = counting_builder(pm, config)
    again = build_runtime_image(config, BASE, ["alpha"], repo=repo, pm=pm, builder=builder)
    assert again.image == alone.image and again.details["runtime_tier"] == "exact" and runs == []
    assert spy.calls == 0
    labels = (inspect(docker_engine, again.image) or {})["Config"]["Labels"]
    assert labels["org.rtbuild.runtime.plugins"] == "alpha"


def test_conflicting_plugins_fail_before_any_build(docker_engine: str, repo: str) -> None:
    class Clash:
        name, order = "clash", 0

        def requirements(self, config: Config) -> RuntimeRequirements:
            return RuntimeRequirements(files={"/opt/tiny/alpha.txt": "mine"})

    pm, config = _pm(Tiny("alpha"), Clash()), _config()
    builder, runs = counting_builder(pm, config)
    with pytest.raises(PluginError) as info:
        build_runtime_image(config, BASE, ["alpha", "clash"], repo=repo, pm=pm, builder=builder)
    assert "'alpha'" in info.value.message and "'clash'" in info.value.message
    assert "/opt/tiny/alpha.txt" in info.value.message
    assert runs == []


@pytest.mark.registry
def test_exact_tag_in_the_registry_is_reused_through_the_builder(docker_engine: str, registry: Any) -> None:
    repo = registry.ref(f"rt-{uuid.uuid4().hex[:8]}")
    pm, config = _pm(Tiny("alpha")), _config()
    try:
        pushed = build_runtime_image(config, BASE, ["alpha"], repo=repo, pm=pm, push=True)
        assert pushed.details["runtime_tier"] == "scratch"
        remove_repo(docker_engine, repo)
        assert inspect(docker_engine, pushed.image) is None

        builder, runs = counting_builder(pm, config)
        found = build_runtime_image(config, BASE, ["alpha"], repo=repo, pm=pm, builder=builder)
        assert found.details["runtime_tier"] == "exact" and found.details["found_in"] == "registry"
        assert found.image == pushed.image and runs == []
        # Asked through the image_exists chain: the builder fetched it from its registry.
        assert inspect(docker_engine, pushed.image) is not None

        # Only the lock tag in the registry: the source layers are built on it (pulled by FROM).
        other = Tiny("alpha", source="v2")
        pm2 = _pm(other)
        builder2, runs2 = counting_builder(pm2, config)
        lock = build_runtime_image(config, BASE, ["alpha"], repo=repo, pm=pm2, builder=builder2)
        assert lock.details["runtime_tier"] == "lock" and lock.details["found_in"] == "registry"
        assert runs2 == [[lock.image]]
    finally:
        remove_repo(docker_engine, repo)


def test_measure_helpers_build_scratch_then_source_only(docker_engine: str, repo: str) -> None:
    # The benchmark helpers live in bench/ (not shipped in the core); tested here against the engine.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from runtime_measure import MARKER_PATH, build_scratch, build_source_change

    pm, config = _pm(Tiny("alpha")), _config()
    builder, runs = counting_builder(pm, config)
    scratch = build_scratch(config, BASE, ["alpha"], repo=repo, pm=pm, builder=builder)
    assert scratch.details["runtime_tier"] == "scratch" and len(runs) == 2
    runs.clear()
    changed = build_source_change(config, BASE, ["alpha"], repo=repo, pm=pm, builder=builder, marker="m2")
    assert changed.details["runtime_tier"] == "lock" and runs == [[changed.image]]
    assert changed.details["lock_tag"] == scratch.details["lock_tag"]
    assert docker(docker_engine, "run", "--rm", changed.image, "cat", MARKER_PATH).stdout == "m2\n"
    assert layers(docker_engine, changed.image)[: len(layers(docker_engine, scratch.details["lock_tag"]))] == layers(
        docker_engine, scratch.details["lock_tag"]
    )


def test_retagged_base_image_changes_the_lock_hash(docker_engine: str, repo: str) -> None:
    # Same base reference, different image behind it: the lock hash must follow the image ID,
    # or an old dependency image would be reused on top of a stale base.
    base = f"rtbuild-test/base-{uuid.uuid4().hex[:8]}:latest"
    alpha = Tiny("alpha")
    pm, config = _pm(alpha), _config()
    builder, _runs = counting_builder(pm, config)
    try:
        docker(docker_engine, "tag", BASE, base)
        first = build_runtime_image(config, base, ["alpha"], repo=repo, pm=pm, builder=builder)
        assert first.details["base_image_id"] == inspect(docker_engine, BASE)["Id"]  # type: ignore[index]
        docker(docker_engine, "tag", first.details["lock_tag"], base)  # another image, same name
        second = build_runtime_image(config, base, ["alpha"], repo=repo, pm=pm, builder=builder)
        assert second.details["base_image_id"] != first.details["base_image_id"]
        assert second.details["lock_tag"] != first.details["lock_tag"]
        assert second.details["runtime_tier"] == "scratch"
    finally:
        docker(docker_engine, "rmi", base, check=False)
