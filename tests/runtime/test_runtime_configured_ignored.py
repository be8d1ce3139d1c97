"""A configured runtime image (``[sandbox] runtime_container_image``,
``RTBUILD_RUNTIME_CONTAINER_IMAGE``) is returned as is; the build inputs given with it
are said to be unused, not silently dropped.

``RTBUILD_RUNTIME_CONTAINER_IMAGE`` inherited from a deployment's environment made
``rtbuild runtime --base B --plugin P --source ./agent`` print the configured image and exit
0 without a word: an image without the agent's code, as if it had been built from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner
from rtbuild import Reporter
from rtbuild._framework.config import Config, SandboxConfig
from rtbuild._framework.progress import use_reporter
from rtbuild.cli._main import cli
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image

SECRET = "s3cr3t-value-7781"


class _Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append({"event": kind, **fields})


def _config() -> Config:
    return Config(load_plugins=[], sandbox=SandboxConfig(runtime_container_image="my/rt:1"))


def test_inputs_a_configured_image_leaves_unused_are_named(tmp_path: Path) -> None:
    recorder = _Recorder()
    with use_reporter(recorder):
        result = build_runtime_image(
            _config(),
            "busybox:latest",
            ["jupyter"],
            build_args={"TOKEN": SECRET},
            payloads=[SourcePayload.directory(tmp_path, "/opt/agent")],
        )
    assert result.image == "my/rt:1" and result.details["runtime_tier"] == "configured"
    assert result.details["ignored"] == ["--base", "--plugin", "--source", "--build-arg"]
    warnings = [str(e["message"]) for e in recorder.events if e["event"] == "warning"]
    assert len(warnings) == 1 and "--source" in warnings[0] and "RTBUILD_RUNTIME_CONTAINER_IMAGE" in warnings[0]
    assert SECRET not in repr(recorder.events) and SECRET not in repr(result.to_dict())


def test_nothing_given_nothing_said() -> None:
    recorder = _Recorder()
    with use_reporter(recorder):
        result = build_runtime_image(_config())
    assert result.image == "my/rt:1" and result.details["ignored"] == []
    assert not [e for e in recorder.events if e["event"] == "warning"]


def test_the_cli_says_it_on_stderr_and_prints_the_image_only(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("RTBUILD_RUNTIME_CONTAINER_IMAGE", "my/rt:1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agent").mkdir()
    result = CliRunner().invoke(cli, ["runtime", "--base", "busybox:latest", "--source", "./agent"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "my/rt:1\n"
    assert "--base, --source did not change it" in result.stderr
