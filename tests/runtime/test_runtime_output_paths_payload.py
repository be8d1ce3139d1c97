"""A payload holding a path rtbuild was *configured* to write to is not changed by it.

The default cache and state directories were already left out (test_runtime_own_dirs_payload);
a metrics file (``RTBUILD_METRICS_FILE``, ``[plugins.metrics] path``), a builder ``log_dir``
or an enabled sbom plugin's ``dir`` inside a ``--source`` directory was not: the request
wrote a metrics line (even on an exact hit) or a build log there, so the next request saw
another payload and built again, for ever (reproduced with ``rtbuild runtime --source .``
and ``log_dir = "logs"`` in the workspace's rtbuild.toml: a new tag on every run, the logs
and metrics lines copied into the image).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.errors import ConfigError
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image
from rtbuild.runtime._payload import resolve
from rtbuild.runtime._payload_match import output_paths, writing_to
from runtime_engine_helpers import docker, remove_repo

BASE = "busybox:latest"


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "code").mkdir(parents=True)
    (ws / "code" / "main.py").write_text(f"TOKEN = {uuid.uuid4().hex!r}\n")
    (ws / "rtbuild.toml").write_text("")
    return ws


def _config(ws: Path, **plugins: dict[str, object]) -> Config:
    return Config(load_plugins=["metrics", "sbom"], plugins=dict(plugins), source=str(ws / "rtbuild.toml"))


def test_configured_outputs_below_a_payload_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _workspace(tmp_path)
    monkeypatch.delenv("RTBUILD_METRICS_FILE", raising=False)
    config = _config(ws, metrics={"path": "out/metrics.jsonl"}, sbom={"enabled": True, "dir": "sboms"})
    pm = get_plugin_manager(config)
    builder = SimpleNamespace(log_dir=str(ws / "logs"))
    outputs = output_paths(config, pm, builder)
    assert {what for what, _, _ in outputs} == {"metrics file", "build log directory", "sbom directory"}
    spec = SourcePayload.directory(ws, "/opt/ws")
    with writing_to(outputs):
        first = resolve("extra-source", spec)
    # What a request writes there changes neither the digest nor the staged tree.
    (ws / "out" / "metrics.jsonl").write_text('{"a": 1}\n')
    (ws / "out" / "metrics.jsonl.1").write_text('{"a": 0}\n')
    (ws / "logs").mkdir(exist_ok=True)
    (ws / "logs" / "build-1.log").write_text("#1 done\n")
    (ws / "sboms").mkdir(exist_ok=True)
    (ws / "sboms" / "sha256-x.cdx.json").write_text("{}\n")
    again = resolve("extra-source", spec, outputs)
    assert again.digest == first.digest
    names = {rel for rel, _ in again.entries()}
    assert {"code/main.py", "rtbuild.toml", "out"} <= names
    assert not [rel for rel in names if rel.startswith(("out/", "logs", "sboms"))], names
    # A user file beside them still counts.
    (ws / "out" / "notes.txt").write_text("mine\n")
    assert resolve("extra-source", spec, outputs).digest != first.digest


def test_the_metrics_variable_and_unused_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _workspace(tmp_path)
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(ws / "m.jsonl"))
    config = _config(ws, sbom={"dir": "sboms"})  # sbom not enabled: it writes nothing
    assert [path for _, path, _ in output_paths(config, get_plugin_manager(config))] == [
        str(ws / "m.jsonl"),
        str(ws / "m.jsonl.1"),
    ]
    disabled = Config(load_plugins=[], source=str(ws / "rtbuild.toml"))
    assert output_paths(disabled, get_plugin_manager(disabled)) == ()


def test_a_payload_that_is_the_log_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "logs" / "mine").mkdir(parents=True)
    (tmp_path / "logs" / "mine" / "a").write_text("a\n")
    outputs = (("build log directory", str(tmp_path / "logs"), True),)
    with pytest.raises(ConfigError, match="is rtbuild's build log directory") as caught:
        resolve("extra-source", SourcePayload.directory(tmp_path / "logs", "/opt/x"), outputs)
    assert caught.value.step == "hash runtime payload"
    # rtbuild writes only its own files there (build-*.log): a directory below it is a payload
    # like any other (log_dir = "/tmp" with --source /tmp/agent was refused).
    assert resolve("extra-source", SourcePayload.directory(tmp_path / "logs" / "mine", "/opt/x"), outputs).files == 1


@pytest.fixture
def out_repo(docker_engine: str) -> Iterator[str]:
    name = f"rtbuild-test/rt-out-{uuid.uuid4().hex[:8]}"
    yield name
    remove_repo(docker_engine, name)


@pytest.mark.engine
def test_configured_logs_and_metrics_never_rebuild(
    docker_engine: str, out_repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(ws / "metrics.jsonl"))
    config = Config(load_plugins=["metrics"], builders={"docker": {"log_dir": str(ws / "logs")}}, source=None)
    pm = get_plugin_manager(config)
    payloads = [SourcePayload.directory(ws, "/opt/ws")]
    results = [build_runtime_image(config, BASE, [], repo=out_repo, payloads=payloads, pm=pm) for _ in range(3)]
    assert (ws / "metrics.jsonl").exists() and list((ws / "logs").glob("build-*.log"))
    assert [r.details["runtime_tier"] for r in results[1:]] == ["exact", "exact"]
    assert {r.image for r in results} == {results[0].image}
    listing = docker(docker_engine, "run", "--rm", results[0].image, "find", "/opt/ws").stdout.split()
    assert "/opt/ws/code/main.py" in listing
    assert not [path for path in listing if "metrics" in path or "/logs" in path], listing
