"""Two selected runtime plugins that EXPOSE one port stop the composition naming both.

``[plugins.jupyter] port = 3000`` with the vscode plugin (default port 3000) built an image
whose two start scripts serve on the same port: the second server fails when the sandbox
starts it, long after the build said nothing. Other clashes (one env var set differently,
one image path written twice) were already refused at composition.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.errors import PluginError
from rtbuild.runtime._compose import render
from rtbuild.runtime._plugin import RuntimeRequirements
from rtbuild.runtime._select import compose_runtime


def _render(*dockerfiles: tuple[str, str]) -> None:
    render(
        "busybox:latest",
        [(f"p{i}", RuntimeRequirements(dockerfile=d, source_dockerfile=s)) for i, (d, s) in enumerate(dockerfiles)],
    )


@pytest.mark.parametrize(
    ("one", "two"),
    [
        (("", "EXPOSE 3000"), ("", "EXPOSE 3000")),
        (("", "EXPOSE 8080 3000/tcp"), ("EXPOSE 3000", "")),
        (("", "expose 53/UDP"), ("", "RUN true\nEXPOSE \\\n  53/udp")),
    ],
)
def test_one_port_exposed_by_two_plugins_is_refused(one: tuple[str, str], two: tuple[str, str]) -> None:
    with pytest.raises(PluginError, match=r"runtime plugins 'p0' and 'p1' both EXPOSE \d+/(tcp|udp)") as caught:
        _render(one, two)
    assert caught.value.step == "compose runtime image"
    assert "[plugins.p0] port or [plugins.p1] port" in (caught.value.hint or "")


def test_other_ports_protocols_and_variables_are_no_clash() -> None:
    _render(("", "EXPOSE 3000"), ("", "EXPOSE 3000/udp 8888"), ("", "EXPOSE ${PORT}"), ("", "EXPOSE $PORT"))
    _render(("", "EXPOSE 3000\nEXPOSE 3000"))  # one plugin saying it twice


def test_jupyter_on_the_vscode_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the vscode plugin's download cache
    archive = tmp_path / "server.tar.gz"
    archive.write_bytes(b"not inspected at composition\n")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    vscode = {"url": archive.as_uri(), "sha256": sha}
    config = Config(plugins={"vscode": vscode, "jupyter": {"port": 3000}})
    with pytest.raises(PluginError, match="'jupyter' and 'vscode' both EXPOSE 3000/tcp"):
        compose_runtime(config, "busybox:latest", ["vscode", "jupyter"], pm=get_plugin_manager(config))
    config = Config(plugins={"vscode": vscode, "jupyter": {"port": 8888}})
    compose_runtime(config, "busybox:latest", ["vscode", "jupyter"], pm=get_plugin_manager(config))
