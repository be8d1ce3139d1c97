"""Runtime-image composition with a fake builder: rendering, hashing, tiers, selection, errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import RtbuildPluginManager, get_plugin_manager
from rtbuild.errors import ConfigError, PluginError
from rtbuild.runtime._build import build_runtime_image, get_runtime_image
from rtbuild.runtime._compose import render
from rtbuild.runtime._plugin import RuntimePlugin, RuntimeRequirements
from rtbuild.runtime._select import compose_runtime, runtime_tags, version_tag_part
from rtbuild.testing import FakeBuilder, run_cli


@dataclass
class Plugin:
    name: str
    req: RuntimeRequirements = field(default_factory=RuntimeRequirements)
    order: int = 0
    calls: int = 0

    def requirements(self, config: Config) -> RuntimeRequirements:
        self.calls += 1
        return self.req


class Offer:
    def __init__(self, *plugins: Any) -> None:
        self.plugins = list(plugins)

    @rtbuild.hookimpl
    def runtime_plugins(self, config: Config) -> list[Any]:
        return self.plugins


def make_pm(*plugins: Any) -> RtbuildPluginManager:
    return get_plugin_manager(Config(), load_entrypoints=False, extra_plugins=[Offer(*plugins)])


def config(**runtime: Any) -> Config:
    cfg = Config()
    cfg.runtime.repo = "rt/test"
    for key, value in runtime.items():
        setattr(cfg.runtime, key, value)
    return cfg


A = Plugin("alpha", RuntimeRequirements(dockerfile="RUN echo a", env={"A": "1"}, files={"/opt/a.txt": "a"}))
B = Plugin("beta", RuntimeRequirements(dockerfile="RUN echo b", dependency_files={"/opt/b.lock": "b1"}), order=-5)


def test_plugin_objects_follow_the_protocol() -> None:
    assert isinstance(A, RuntimePlugin)


def test_render_is_deterministic_and_ordered_by_order_then_name() -> None:
    pm = make_pm(Plugin("zeta"), A, B)
    first = compose_runtime(config(), "busybox:latest", ["alpha", "beta"], pm=pm)
    second = compose_runtime(config(), "busybox:latest", ["beta", "alpha"], pm=pm)
    assert first.deps.dockerfile == second.deps.dockerfile
    assert (first.lock_hash, first.source_hash) == (second.lock_hash, second.source_hash)
    text = first.deps.dockerfile
    assert text.index("# -- beta") < text.index("# -- alpha")  # order -5 first
    assert 'ENV A="1"' in text
    assert "zeta" not in text and "zeta" not in first.source.dockerfile
    assert len(first.lock_hash) == len(first.source_hash) == 16


def test_unselected_plugin_never_called_and_changes_nothing() -> None:
    spy = Plugin("spy", RuntimeRequirements(dockerfile="RUN echo spy"))
    with_spy = compose_runtime(config(), "busybox:latest", ["alpha"], pm=make_pm(A, spy))
    without = compose_runtime(config(), "busybox:latest", ["alpha"], pm=make_pm(A))
    assert spy.calls == 0
    assert (with_spy.lock_hash, with_spy.source_hash) == (without.lock_hash, without.source_hash)


def test_tier_parts_split_between_lock_and_source_hash() -> None:
    base = render("busybox:latest", [("p", RuntimeRequirements(files={"/f": "1"}, dockerfile="RUN true"))])
    src = render("busybox:latest", [("p", RuntimeRequirements(files={"/f": "2"}, dockerfile="RUN true"))])
    dep = render("busybox:latest", [("p", RuntimeRequirements(files={"/f": "1"}, dockerfile="RUN false"))])
    env = render(
        "busybox:latest", [("p", RuntimeRequirements(files={"/f": "1"}, dockerfile="RUN true", env={"X": "y"}))]
    )
    other_id = render(
        "busybox:latest",
        [("p", RuntimeRequirements(files={"/f": "1"}, dockerfile="RUN true"))],
        base_image_id="sha256:other",
    )
    assert src.lock_hash == base.lock_hash and src.source_hash != base.source_hash
    assert dep.lock_hash != base.lock_hash and dep.source_hash == base.source_hash
    assert env.lock_hash != base.lock_hash
    assert other_id.lock_hash != base.lock_hash


def test_files_from_host_paths_and_script_mode(tmp_path: Path) -> None:
    host = tmp_path / "ca.crt"
    host.write_text("CERT")
    comp = render(
        "busybox:latest",
        [
            (
                "p",
                RuntimeRequirements(dependency_files={"/etc/ca.crt": host}, files={"/usr/bin/go": "#!/bin/sh\necho\n"}),
            )
        ],
    )
    assert [f.content for f in comp.deps.files] == [b"CERT"]
    assert comp.source.files[0].mode == 0o755 and comp.deps.files[0].mode == 0o644
    out = Path(comp.deps.write(tmp_path / "ctx"))
    assert (out / comp.deps.files[0].name).read_bytes() == b"CERT"
    group = comp.deps.files[0].name.rsplit("/", 1)[0]
    assert f'COPY ["{group}/", "/etc/"]' in (out / "Dockerfile").read_text()


def test_env_values_are_quoted_literally() -> None:
    comp = render("busybox:latest", [("p", RuntimeRequirements(env={"V": 'a "b" $HOME\\'}))])
    assert 'ENV V="a \\"b\\" \\$HOME\\\\"' in comp.deps.dockerfile


@pytest.mark.parametrize("kind", ["env", "build_args", "labels"])
def test_a_value_with_a_line_break_is_refused(kind: str) -> None:
    """A Dockerfile cannot carry a line break in a value: rendered as \\n, the engine set
    ENV X to 'a', a backslash, 'n', 'b' (checked with docker inspect), silently not what
    the plugin asked for. The value is not shown (it may be a secret)."""
    req = RuntimeRequirements(**{kind: {"X": "first-S3cret\nsecond"}})
    with pytest.raises(PluginError, match="holds a line break") as info:
        compose_runtime(config(), "busybox:latest", ["gamma"], pm=make_pm(Plugin("gamma", req)))
    assert "S3cret" not in info.value.render()


@pytest.mark.parametrize(
    ("one", "two", "words"),
    [
        (RuntimeRequirements(files={"/x": "1"}), RuntimeRequirements(dependency_files={"/x": "2"}), "both write /x"),
        (RuntimeRequirements(env={"E": "1"}), RuntimeRequirements(env={"E": "2"}), "env var E differently"),
    ],
)
def test_conflicts_name_both_plugins(one: RuntimeRequirements, two: RuntimeRequirements, words: str) -> None:
    pm = make_pm(Plugin("one", one), Plugin("two", two))
    with pytest.raises(PluginError) as info:
        compose_runtime(config(), "busybox:latest", ["one", "two"], pm=pm)
    assert "'one'" in info.value.message and "'two'" in info.value.message and words in info.value.message
    assert info.value.step == "compose runtime image" and info.value.hint


def test_same_env_same_value_is_no_conflict() -> None:
    pm = make_pm(Plugin("one", RuntimeRequirements(env={"E": "1"})), Plugin("two", RuntimeRequirements(env={"E": "1"})))
    compose_runtime(config(), "busybox:latest", ["one", "two"], pm=pm)


def test_unknown_plugin_lists_available() -> None:
    with pytest.raises(ConfigError) as info:
        compose_runtime(config(), "busybox:latest", ["alpha", "nope"], pm=make_pm(A, B))
    assert "'nope'" in info.value.message and "alpha, beta" in info.value.message


def test_duplicate_runtime_plugin_names_are_an_error() -> None:
    with pytest.raises(PluginError, match="two runtime plugins are named 'alpha'"):
        compose_runtime(config(), "busybox:latest", ["alpha"], pm=make_pm(A, Plugin("alpha")))


def test_tags_and_selection() -> None:
    pm = make_pm(A, B)
    one = compose_runtime(config(), "busybox:latest", ["alpha"], pm=pm)
    two = compose_runtime(config(), "busybox:latest", ["alpha", "beta"], pm=pm)
    tags = runtime_tags(one, "rt/test")
    assert tags.exact == f"rt/test:{version_tag_part()}_{one.lock_hash}_{one.source_hash}"
    assert tags.lock == f"rt/test:{version_tag_part()}_{one.lock_hash}"
    assert runtime_tags(two, "rt/test").lock != tags.lock
    assert version_tag_part("1.0+local/x") == "1.0-local-x"
    with pytest.raises(ConfigError):
        runtime_tags(one, "rt/test:tag")


def test_three_tiers_with_a_fake_builder() -> None:
    pm, builder, cfg = make_pm(A, B), FakeBuilder(), config()
    scratch = build_runtime_image(cfg, "busybox:latest", ["alpha", "beta"], pm=pm, builder=builder)
    builds = [c for c in builder.calls if c["method"] == "build"]
    assert scratch.details["runtime_tier"] == "scratch" and not scratch.cached
    assert [b["tags"] for b in builds] == [[scratch.details["lock_tag"]], [scratch.details["exact_tag"]]]
    assert scratch.image == scratch.details["exact_tag"]
    assert set(scratch.tags) == {scratch.details["lock_tag"], scratch.details["exact_tag"]}

    builder.calls.clear()
    exact = build_runtime_image(cfg, "busybox:latest", ["alpha", "beta"], pm=pm, builder=builder)
    assert exact.cached and exact.details["runtime_tier"] == "exact" and exact.image == scratch.image
    assert not [c for c in builder.calls if c["method"] == "build"]
    assert all(c["pull_from_repo"] is False for c in builder.calls)

    builder.calls.clear()
    builder.images.discard(scratch.image)
    lock = build_runtime_image(cfg, "busybox:latest", ["alpha", "beta"], pm=pm, builder=builder)
    builds = [c for c in builder.calls if c["method"] == "build"]
    assert lock.details["runtime_tier"] == "lock" and len(builds) == 1
    assert builds[0]["tags"] == [scratch.image]
    # The source context is staged per composition and kept: its Dockerfile builds FROM the lock tag.
    assert f"FROM {scratch.details['lock_tag']}" in (Path(builds[0]["path"]) / "Dockerfile").read_text()

    builder.calls.clear()
    forced = build_runtime_image(cfg, "busybox:latest", ["alpha", "beta"], pm=pm, builder=builder, force_rebuild=True)
    assert forced.details["runtime_tier"] == "scratch"
    assert len([c for c in builder.calls if c["method"] == "build"]) == 2


def test_source_change_via_extra_files_keeps_the_lock() -> None:
    pm, builder, cfg = make_pm(A), FakeBuilder(), config()
    first = build_runtime_image(cfg, "busybox:latest", ["alpha"], pm=pm, builder=builder)
    second = build_runtime_image(
        cfg, "busybox:latest", ["alpha"], pm=pm, builder=builder, extra_files={"/opt/marker": "1"}
    )
    assert second.details["lock_hash"] == first.details["lock_hash"]
    assert second.details["source_hash"] != first.details["source_hash"]
    assert second.details["runtime_tier"] == "lock"


def test_configured_runtime_image_is_returned_without_building() -> None:
    cfg = config()
    cfg.sandbox.runtime_container_image = "my/runtime:1"
    builder = FakeBuilder()
    assert get_runtime_image(cfg, "busybox:latest", ["alpha"], pm=make_pm(A), builder=builder) == "my/runtime:1"
    assert builder.calls == []


def test_base_defaults_to_config_and_missing_base_is_an_error() -> None:
    cfg = config(plugins=["alpha"])
    with pytest.raises(ConfigError, match="no base image"):
        build_runtime_image(cfg, pm=make_pm(A), builder=FakeBuilder())
    cfg.sandbox.base_container_image = "busybox:latest"
    result = build_runtime_image(cfg, pm=make_pm(A), builder=FakeBuilder())
    assert result.details["base_image"] == "busybox:latest" and result.details["plugins"] == ["alpha"]


def test_post_build_sees_every_stage() -> None:
    seen: list[tuple[str, bool]] = []

    class Recorder:
        @rtbuild.hookimpl
        def post_build(self, request: Any, result: Any) -> None:
            seen.append((request.data["runtime_stage"], result.cached))

    pm = make_pm(A)
    pm.register(Recorder())
    builder = FakeBuilder()
    build_runtime_image(config(), "busybox:latest", ["alpha"], pm=pm, builder=builder)
    build_runtime_image(config(), "busybox:latest", ["alpha"], pm=pm, builder=builder)
    assert seen == [("deps", False), ("source", False), ("exact", True)]


def test_cli_lists_and_reports_unknown_plugins(rtbuild_site: Any) -> None:
    rtbuild_site.add_plugin(
        "rt-fake",
        "rtfake",
        """
        import rtbuild
        from rtbuild.runtime._plugin import RuntimeRequirements

        class P:
            name = "fakeplug"
            order = 3
            def requirements(self, config):
                return RuntimeRequirements()

        @rtbuild.hookimpl
        def runtime_plugins(config):
            return [P()]
        """,
    )
    listed = run_cli(["runtime", "--list", "--json"])
    assert listed.exit_code == 0, listed.stderr
    assert listed.json() == [{"name": "fakeplug", "order": 3}]
    bad = run_cli(["runtime", "--base", "busybox:latest", "--plugin", "nope"])
    assert bad.exit_code == 2 and "choose from: fakeplug" in bad.stderr


def test_base_image_id_from_the_builder_counts_towards_the_lock_hash() -> None:
    class WithId(FakeBuilder):
        def __init__(self, image_id: str) -> None:
            super().__init__()
            self.ids = {"busybox:latest": image_id}

        def image_id(self, name: str) -> str | None:
            return self.ids.get(name)

    one = build_runtime_image(config(), "busybox:latest", ["alpha"], pm=make_pm(A), builder=WithId("sha256:1"))
    two = build_runtime_image(config(), "busybox:latest", ["alpha"], pm=make_pm(A), builder=WithId("sha256:2"))
    assert one.details["base_image_id"] == "sha256:1"
    assert one.details["lock_hash"] != two.details["lock_hash"]
    assert one.details["source_hash"] == two.details["source_hash"]


def test_cli_json_for_a_configured_runtime_image(rtbuild_site: Any) -> None:
    out = run_cli(["runtime", "--json"], env={"RTBUILD_RUNTIME_CONTAINER_IMAGE": "my/runtime:7"})
    assert out.exit_code == 0, out.stderr
    data = out.json()
    assert data["image"] == "my/runtime:7" and data["cached"] is True
    assert data["details"]["runtime_tier"] == "configured"


def test_probes_go_through_the_image_exists_hook_chain() -> None:
    asked: list[tuple[str, bool]] = []

    class Answer:
        @rtbuild.hookimpl(tryfirst=True)
        def image_exists(self, image_name: str, pull_from_repo: bool) -> bool:
            asked.append((image_name, pull_from_repo))
            return True

    pm = make_pm(A)
    pm.register(Answer())
    builder = FakeBuilder()
    result = build_runtime_image(config(), "busybox:latest", ["alpha"], pm=pm, builder=builder)
    assert result.details["runtime_tier"] == "exact" and result.details["found_in"] == "local"
    assert asked == [(result.image, False)]  # a plugin answered first: the builder was not asked
    assert not [c for c in builder.calls if c["method"] in ("image_exists", "build")]


def test_a_registry_only_tag_is_fetched_through_the_builder() -> None:
    class RegistryOnly(FakeBuilder):
        def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
            self.calls.append({"method": "image_exists", "image_name": image_name, "pull_from_repo": pull_from_repo})
            return pull_from_repo and image_name in self.images

    pm, builder = make_pm(A), RegistryOnly()
    cfg = config()
    cfg.runtime.repo = "127.0.0.1:5000/rt"
    first = build_runtime_image(cfg, "busybox:latest", ["alpha"], pm=pm, builder=builder)
    builder.calls.clear()
    again = build_runtime_image(cfg, "busybox:latest", ["alpha"], pm=pm, builder=builder)
    assert again.details["runtime_tier"] == "exact" and again.details["found_in"] == "registry"
    probes = [(c["image_name"], c["pull_from_repo"]) for c in builder.calls if c["method"] == "image_exists"]
    assert probes == [(first.image, False), (first.image, True)]


def test_the_lock_hash_counts_one_spelling_per_platform() -> None:
    """``--platform linux/amd64,Linux/ARM64/v8`` and ``linux/amd64,linux/arm64`` build the
    same images (the build request is spelt one way), but hashed the raw string: another
    exact tag, so the second request built and pushed everything again instead of reusing."""
    pm = make_pm(A)
    hashes = set()
    for given in ("linux/amd64,linux/arm64", "linux/amd64,Linux/ARM64/v8", " linux/amd64 ,linux/arm64,linux/amd64"):
        cfg = config()
        cfg.platform = given
        hashes.add(compose_runtime(cfg, "busybox:latest", ["alpha"], pm=pm).lock_hash)
    assert len(hashes) == 1
    cfg = config()
    cfg.platform = "linux/arm64"
    assert compose_runtime(cfg, "busybox:latest", ["alpha"], pm=pm).lock_hash not in hashes
