"""docs/runtime.md's "Writing a runtime plugin" example, copied from the page and registered
in-process as the page says to for tests, builds a runtime image on the base the page uses
(debian:bookworm) and its script runs. The example once ran ``python3 -m pip install`` in
its dependency group: debian:bookworm has no python3, so the build failed at that step."""

from __future__ import annotations

import re
import subprocess
import types
import uuid
from pathlib import Path

import pytest
from rtbuild import Config, build_runtime_image, get_plugin_manager
from runtime_engine_helpers import inspect, remove_repo

pytestmark = [pytest.mark.engine, pytest.mark.slow]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"
BASE = "debian:bookworm"  # the base every example on the page builds on


def _page_plugin_module() -> types.ModuleType:
    text = PAGE.read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class HelloPlugin" in b]
    module = types.ModuleType("rtbuild_hello_page_example")
    exec(compile(block, str(PAGE), "exec"), module.__dict__)
    return module


def test_the_pages_runtime_plugin_builds_on_the_pages_base(
    docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if inspect(docker_engine, BASE) is None:
        pytest.fail(f"{BASE} is missing: run `make engine` (scripts/engine.sh)", pytrace=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text("greeting = 'hi'\n")  # the example's Path("config.toml")
    config = Config(load_plugins=[], plugins={"hello": {"greeting": "moo-from-the-docs"}})
    pm = get_plugin_manager(config, extra_plugins=[_page_plugin_module()])
    repo = f"rtbuild-test/docs-hello-{uuid.uuid4().hex[:8]}"
    try:
        result = build_runtime_image(config, BASE, ["hello"], repo=repo, pm=pm)
        run = subprocess.run(
            [docker_engine, "run", "--rm", result.image, "hello"], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
        assert "moo-from-the-docs" in run.stdout
        labels = (inspect(docker_engine, result.image) or {})["Config"]["Labels"]
        assert labels["org.example.hello"] == "1"
    finally:
        remove_repo(docker_engine, repo)
