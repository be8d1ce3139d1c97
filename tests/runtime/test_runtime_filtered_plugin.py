"""A runtime plugin that is installed but filtered out (or broken) is named as such.

``RTBUILD_DISABLE_PLUGINS=jupyter`` (or ``RTBUILD_LOAD_PLUGINS=`` for none) then
``rtbuild runtime --plugin jupyter`` read "runtime plugin 'jupyter' not recognised, choose
from: (none installed)" with the hint to ``pip install rtbuild-jupyter``, which was installed.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild._framework.plugins._discovery import PluginRecord
from rtbuild.errors import ConfigError
from rtbuild.runtime._build import build_runtime_image
from rtbuild.runtime._select import select_plugins


@pytest.mark.parametrize(
    "config",
    [Config(load_plugins=[]), Config(disable_plugins=["jupyter"]), Config(disable_plugins=["rtbuild-jupyter"])],
)
def test_a_filtered_out_plugin_is_said_to_be_installed(config: Config) -> None:
    pm = get_plugin_manager(config)
    with pytest.raises(ConfigError) as caught:
        build_runtime_image(config, "busybox:latest", ["jupyter"], pm=pm)
    error = caught.value
    assert "'jupyter' is installed" in error.message and "rtbuild-jupyter" in error.message
    assert "not loaded" in error.message and "pip install" not in (error.hint or "")
    assert "RTBUILD_DISABLE_PLUGINS" in (error.hint or "") and error.step == "select runtime plugins"


def test_a_plugin_that_failed_to_load_says_why() -> None:
    record = PluginRecord("agent", "plugin", "rtbuild-agent", "2.0", "failed", error="ImportError: no module x")
    with pytest.raises(ConfigError, match=r"'agent' is installed .* but failed to load: ImportError: no module x"):
        select_plugins({}, ["agent"], SimpleNamespace(records={"agent": record}))  # type: ignore[arg-type]


def test_an_unknown_name_still_lists_the_loaded_ones() -> None:
    config = Config()
    with pytest.raises(ConfigError, match=r"'jupiter' not recognised, choose from: .*jupyter"):
        build_runtime_image(config, "busybox:latest", ["jupiter"], pm=get_plugin_manager(config))
