"""A malformed kubeconfig whose faulty line holds a token: PyYAML's error text quotes that
line, and the ConfigError was raised ``from`` it, so ``--debug``'s chained traceback printed
the token. The error now gives the line and column alone and is chained to nothing."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from rtbuild import ConfigError

TOKEN = "fake-tok-Zq9xW3kLm0pR7v"
KUBECONFIG = f"""\
apiVersion: v1
kind: Config
users:
- name: ci
  user:
    token: {TOKEN}: oops
contexts: []
"""


def test_a_malformed_kubeconfig_line_with_a_token_is_not_quoted(tmp_path: Path) -> None:
    from rtbuild_kubernetes.client import LightkubeClient
    from rtbuild_kubernetes.settings import settings_from_table

    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    with pytest.raises(ConfigError) as info:
        LightkubeClient(settings_from_table({"kubeconfig": str(path)}))
    error = info.value
    shown = "".join(traceback.format_exception(error)) + repr(error) + str(error.hint) + "".join(error.log_tail or [])
    assert TOKEN not in shown
    assert error.__cause__ is None and error.__context__ is None
    assert "cannot load the Kubernetes configuration" in error.message
    assert "line 6, column" in error.message and "ScannerError" in error.message
