"""A --source payload that clashes with a runtime plugin is named as the --source, and the
hint says to move it: the message read "runtime plugins 'extra-source' and 'jupyter' write
... inside the payload directory /usr/local/bin" with the hint to "select only one of them,
or change one plugin's settings", for a --source ./tools:/usr/local/bin beside jupyter."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild.errors import PluginError
from rtbuild.runtime._compose import render
from rtbuild.runtime._plugin import RuntimeRequirements, SourcePayload


def _clash(tmp_path: Path, plugin: RuntimeRequirements, dest: str) -> PluginError:
    (tmp_path / "tools").mkdir(exist_ok=True)
    caller = RuntimeRequirements(payloads=[SourcePayload.directory(tmp_path / "tools", dest)])
    with pytest.raises(PluginError) as caught:
        render("busybox:latest", [("jupyter", plugin), ("extra-source", caller)])
    return caught.value


def test_a_plugin_file_inside_the_source_destination(tmp_path: Path) -> None:
    error = _clash(tmp_path, RuntimeRequirements(files={"/usr/local/bin/start": "x"}), "/usr/local/bin")
    assert error.message.startswith("the --source payloads")
    assert "'jupyter' write /usr/local/bin/start inside the payload directory /usr/local/bin" in error.message
    assert error.hint is not None and "give the --source" in error.hint and "jupyter writes nothing" in error.hint


def test_one_destination_for_a_plugin_payload_and_the_source(tmp_path: Path) -> None:
    (tmp_path / "own").mkdir()
    plugin = RuntimeRequirements(payloads=[SourcePayload.directory(tmp_path / "own", "/opt/agent")])
    error = _clash(tmp_path, plugin, "/opt/agent")
    assert error.message.startswith("the --source payloads") and "/opt/agent" in error.message
    assert "settings" not in (error.hint or "")


def test_two_plugins_keep_their_message() -> None:
    one, two = RuntimeRequirements(files={"/opt/x": "1"}), RuntimeRequirements(files={"/opt/x": "2"})
    with pytest.raises(PluginError, match="runtime plugins 'a' and 'b' both write /opt/x") as caught:
        render("busybox:latest", [("a", one), ("b", two)])
    assert "select only one of them" in (caught.value.hint or "")
