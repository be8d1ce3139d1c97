"""rtbuild-metrics on the real Docker engine: a real build writes one line with the image's
size, a rebuild of the same inputs is recorded as cached, and a runtime image's stages
(dependency layers, source layers, exact reuse) each leave a line with the image size."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild import BuildRequest, Config
from rtbuild.runtime._build import build_runtime_image

pytestmark = pytest.mark.engine


@pytest.fixture
def metrics_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(path))
    return path


@pytest.fixture
def repo(docker_engine: str) -> Iterator[str]:
    name = f"rtbuild-test/metrics-{uuid.uuid4().hex[:10]}"
    yield name
    listed = subprocess.run(
        [docker_engine, "images", "--format", "{{.Repository}}:{{.Tag}}", name], capture_output=True, text=True
    ).stdout.split()
    if listed:
        subprocess.run([docker_engine, "rmi", "-f", *listed], capture_output=True)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _inspect_size(cli: str, image: str) -> int:
    out = subprocess.run([cli, "image", "inspect", "-f", "{{.Size}}", image], capture_output=True, text=True)
    return int(out.stdout.strip())


def test_real_build_writes_a_line_with_the_image_size(
    docker_engine: str, metrics_file: Path, repo: str, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f'FROM busybox:latest\nRUN echo "{uuid.uuid4()}" > /marker\n')
    config = rtbuild.load_config(env={"RTBUILD_METRICS_FILE": str(metrics_file)}, search_from=tmp_path)
    pm = rtbuild.get_plugin_manager(config)
    assert pm.has_plugin("metrics")

    result = rtbuild.run_build(BuildRequest(str(context), tags=[f"{repo}:one"]), config=config, pm=pm)
    [line] = _lines(metrics_file)
    assert line["image"] == result.image == f"{repo}:one"
    assert line["builder"] == "docker" and line["cached"] is False and line["tags"] == [f"{repo}:one"]
    assert line["duration_s"] > 0 and line["stage"] is None

    # The same inputs again: the engine is not asked to build, and the line says so.
    again = rtbuild.run_build(BuildRequest(str(context), tags=[f"{repo}:one"]), config=config, pm=pm)
    assert again.cached and _lines(metrics_file)[1]["cached"] is True

    assert line["size_bytes"] == _inspect_size(docker_engine, result.image) > 0
    assert _lines(metrics_file)[1]["size_bytes"] == line["size_bytes"]


def test_runtime_image_stages_are_recorded(docker_engine: str, metrics_file: Path, repo: str) -> None:
    config = Config()
    marker = {"/etc/rtbuild-metrics-test": f"{uuid.uuid4()}\n"}
    built = build_runtime_image(config, "busybox:latest", [], repo=repo, extra_files=marker)
    reused = build_runtime_image(config, "busybox:latest", [], repo=repo, extra_files=marker)
    assert reused.cached and reused.image == built.image
    lines = _lines(metrics_file)
    assert [(line["stage"], line["cached"]) for line in lines] == [
        ("deps", False),
        ("source", False),
        ("exact", True),
    ]
    assert lines[1]["image"] == lines[2]["image"] == built.image
    assert lines[0]["image"] == built.details["lock_tag"]
    assert lines[0]["size_bytes"] == _inspect_size(docker_engine, built.details["lock_tag"]) > 0
    assert lines[1]["size_bytes"] == _inspect_size(docker_engine, built.image) > 0
    assert lines[2]["size_bytes"] == lines[1]["size_bytes"]
