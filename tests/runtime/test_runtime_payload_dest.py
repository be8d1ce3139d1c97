"""A payload's DEST is an image directory: a trailing slash names the same directory, and
a DEST that is not normalised is refused as the caller's or the plugin's, not as a file.

'--source ./agent:/opt/agent/' (as one writes a directory) was refused with 'image path
'/opt/agent/' must be absolute and normalised (a file)' and the hint to fix 'the plugin's
files(), or report it to its author', for the user's own --source.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.errors import ConfigError, PluginError
from rtbuild.runtime._compose import render
from rtbuild.runtime._plugin import RuntimeRequirements, SourcePayload
from rtbuild.runtime._select import compose_runtime


def _compose(*payloads: SourcePayload) -> str:
    config = Config(load_plugins=[])
    composition = compose_runtime(config, "busybox:latest", [], pm=get_plugin_manager(config), payloads=payloads)
    return composition.source_hash


def _agent(tmp_path: Path) -> Path:
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "main.py").write_text("print(1)\n")
    return tmp_path / "agent"


def test_a_trailing_slash_names_the_same_directory(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    plain = SourcePayload.parse(f"{agent}:/opt/agent")
    for spelling in ("/opt/agent/", "/opt/agent//"):
        slashed = SourcePayload.parse(f"{agent}:{spelling}")
        assert slashed == plain
    assert SourcePayload.distribution("x", "/opt/x/").dest == "/opt/x"
    assert SourcePayload.directory(agent, "//").dest == "/"
    assert _compose(SourcePayload.directory(agent, "/opt/agent/")) == _compose(plain)


@pytest.mark.parametrize(("dest", "normal"), [("/opt/../etc", "/etc"), ("/opt//x", "/opt/x"), ("/opt/./x", "/opt/x")])
def test_a_dest_not_normalised_is_the_callers_error(tmp_path: Path, dest: str, normal: str) -> None:
    agent = _agent(tmp_path)
    with pytest.raises(ConfigError) as caught:
        _compose(SourcePayload.parse(f"{agent}:{dest}"))
    error = caught.value
    assert not isinstance(error, PluginError)
    assert dest in error.message and "(a file)" not in error.message
    assert error.step == "compose runtime image"
    assert error.hint is not None and f"--source PATH:{normal}" in error.hint and "author" not in error.hint


def test_a_plugins_bad_dest_is_the_plugins_error(tmp_path: Path) -> None:
    req = RuntimeRequirements(payloads=[SourcePayload(str(_agent(tmp_path)), "opt/agent")])
    with pytest.raises(PluginError, match=r"runtime plugin 'mine': source payload .* goes to 'opt/agent'"):
        render("busybox:latest", [("mine", req)])
