"""A runtime plugin's RUN step that fails is blamed on that plugin, on the real engine.

The Dockerfile is rtbuild's, composed from the selected plugins, yet a failing step (the
jupyter plugin on a base without python3 or apt-get) read 'from: builder docker' with the
hint 'fix the command in the Dockerfile'.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.errors import BuildFailedError
from rtbuild.runtime import RuntimeRequirements
from rtbuild.runtime._build import build_runtime_image
from runtime_engine_helpers import remove_repo

pytestmark = [pytest.mark.engine]
BASE = "busybox:latest"


class _Needy:
    order = 0

    def __init__(self, name: str, *, deps: bool) -> None:
        self.name, self.deps = name, deps

    def requirements(self, config: Config) -> RuntimeRequirements:
        step = f"RUN echo '{self.name}: the base lacks what I need' >&2; \\\n    exit 3"
        if self.deps:
            return RuntimeRequirements(dockerfile=f"RUN echo {uuid.uuid4().hex} >/dev/null\n{step}")
        return RuntimeRequirements(files={"/opt/x": "x\n"}, source_dockerfile=step)


class _Fine:
    name, order = "fine", -1

    def requirements(self, config: Config) -> RuntimeRequirements:
        return RuntimeRequirements(dockerfile=f"RUN echo fine-{uuid.uuid4().hex} > /fine")


class _Offer:
    def __init__(self, *plugins: Any) -> None:
        self.plugins = list(plugins)

    @rtbuild.hookimpl
    def runtime_plugins(self, config: Config) -> list[Any]:
        return self.plugins


@pytest.fixture
def blame_repo(docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    name = f"rtbuild-test/rt-blame-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


@pytest.mark.parametrize("deps", [True, False], ids=["dependency-step", "source-step"])
def test_a_failing_run_step_is_blamed_on_its_plugin(docker_engine: str, blame_repo: str, deps: bool) -> None:
    config = Config(load_plugins=[])
    pm = get_plugin_manager(config, extra_plugins=[_Offer(_Fine(), _Needy("needy", deps=deps))])
    with pytest.raises(BuildFailedError) as info:
        build_runtime_image(config, BASE, ["fine", "needy"], repo=blame_repo, pm=pm)
    error = info.value
    assert (error.blame or "").startswith("runtime plugin needy ("), error.blame
    assert "runtime plugin needy's" in (error.hint or "") and BASE in (error.hint or "")
    assert "fix the command in the Dockerfile" not in (error.hint or "")
    assert any("the base lacks what I need" in line for line in error.log_tail)
