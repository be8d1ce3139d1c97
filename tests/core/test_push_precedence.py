"""Push regressions: an explicit false wins over `push = true` in the configuration (API,
`build`, `build-many`, `runtime`), and a runtime image only the registry holds is never
pushed from a local engine that lacks it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild import BuildRequest, Config, run_build
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.runtime._build import build_runtime_image
from rtbuild.runtime._plugin import RuntimeRequirements
from rtbuild.testing import FakeBuilder, FakeSite, run_cli

PUSHING = """
from rtbuild.testing import FakeBuilder


class SiteBuilder(FakeBuilder):
    calls, images, pushed, metadata = [], set(), [], {}

    def __init__(self):
        pass
"""


def _pushed() -> list[str]:
    return list(sys.modules["pushing_site_builder"].SiteBuilder.pushed)


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-pushing", "pushing", source=PUSHING, module="pushing_site_builder")
    (tmp_path / "rtbuild.toml").write_text('builder = "pushing"\npush = true\n')
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


@pytest.mark.parametrize(("push", "expected"), [(False, []), (None, ["r/img:1"]), (True, ["r/img:1"])])
def test_api_explicit_false_wins_over_config_true(context: Path, push: bool | None, expected: list[str]) -> None:
    builder = FakeBuilder()
    config = Config(push=True)
    pm = get_plugin_manager(config, load_entrypoints=False)
    result = run_build(BuildRequest(str(context), tags=["r/img:1"], push=push), config=config, pm=pm, builder=builder)
    assert builder.pushed == expected
    assert result.details.get("pushed", False) is bool(expected)


def test_build_no_push_wins_over_config_true(site: FakeSite, context: Path) -> None:
    assert run_cli(["build", str(context), "-t", "r/img:1", "--no-push"]).exit_code == 0
    assert _pushed() == []
    assert run_cli(["build", str(context), "-t", "r/img:2"]).exit_code == 0
    assert _pushed() == ["r/img:2"]


def test_build_many_push_false_wins_over_config_true(site: FakeSite, context: Path, tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text(
        f'[[build]]\npath = "{context}"\ntags = ["r/a:1"]\npush = false\n\n'
        f'[[build]]\npath = "{context}"\ntags = ["r/b:1"]\n'
    )
    result = run_cli(["build-many", str(tmp_path / "b.toml"), "-q"])
    assert result.exit_code == 0, result.stderr
    assert _pushed() == ["r/b:1"]


class _Offer:
    @rtbuild.hookimpl
    def runtime_plugins(self, config: Config) -> list[Any]:
        class Alpha:
            name, order = "alpha", 0

            def requirements(self, config: Config) -> RuntimeRequirements:
                return RuntimeRequirements(dockerfile="RUN echo a")

        return [Alpha()]


def _runtime_config(repo: str = "rt/test") -> Config:
    config = Config(push=True)
    config.runtime.repo = repo
    return config


def test_runtime_explicit_false_wins_over_config_true() -> None:
    pm = get_plugin_manager(Config(), load_entrypoints=False, extra_plugins=[_Offer()])
    builder = FakeBuilder()
    build_runtime_image(_runtime_config(), "busybox:latest", ["alpha"], pm=pm, builder=builder, push=False)
    assert builder.pushed == []
    result = build_runtime_image(_runtime_config(), "busybox:latest", ["alpha"], pm=pm, builder=builder)
    assert result.details["runtime_tier"] == "exact" and builder.pushed == [result.image]


class RegistryOnly(FakeBuilder):
    """The registry holds the exact tag; the local engine does not (until a pull)."""

    def __init__(self, in_registry: set[str]) -> None:
        super().__init__()
        self.in_registry = in_registry

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        self.calls.append({"method": "image_exists", "image_name": image_name, "pull_from_repo": pull_from_repo})
        return image_name in self.images or (pull_from_repo and image_name in self.in_registry)


def test_runtime_exact_hit_only_in_the_registry_is_never_pushed() -> None:
    pm = get_plugin_manager(Config(), load_entrypoints=False, extra_plugins=[_Offer()])
    config = _runtime_config("127.0.0.1:5999/rt")
    # Learn the exact tag with a throw-away build, then start from an empty engine.
    exact = build_runtime_image(config, "busybox:latest", ["alpha"], pm=pm, builder=FakeBuilder(), push=False).image
    builder = RegistryOnly({exact})
    result = build_runtime_image(config, "busybox:latest", ["alpha"], pm=pm, builder=builder)
    assert result.details["runtime_tier"] == "exact" and result.details["found_in"] == "registry"
    assert builder.pushed == [] and [c for c in builder.calls if c["method"] == "build"] == []


def test_runtime_cli_no_push_wins_over_config_true(rtbuild_site: FakeSite, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    rtbuild_site.add_builder("rtbuild-pushing", "pushing", source=PUSHING, module="pushing_site_builder")
    rtbuild_site.add_plugin(
        "rt-alpha",
        "alpha",
        """
        import rtbuild
        from rtbuild.runtime._plugin import RuntimeRequirements

        class Alpha:
            name, order = "alpha", 0
            def requirements(self, config):
                return RuntimeRequirements(dockerfile="RUN echo a")

        @rtbuild.hookimpl
        def runtime_plugins(config):
            return [Alpha()]
        """,
    )
    (tmp_path / "rtbuild.toml").write_text('builder = "pushing"\npush = true\n[runtime]\nrepo = "rt/x"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli(["runtime", "--base", "busybox:latest", "--plugin", "alpha", "--no-push", "-q"])
    assert result.exit_code == 0, result.stderr
    assert _pushed() == []
    again = run_cli(["runtime", "--base", "busybox:latest", "--plugin", "alpha", "-q"])
    assert again.exit_code == 0, again.stderr
    assert _pushed() == [again.stdout.strip()]
