"""A kubeconfig exec plugin that fails after printing its credential: the error's log tail
shows the plugin's stderr, with every word it also printed on stdout (the token) masked,
as a docker credential helper's stderr is shown."""

from __future__ import annotations

from pathlib import Path

import pytest

TOKEN = "k8s-Tq7-exec-token-value"


def test_a_failing_exec_plugin_s_stderr_does_not_show_its_token(tmp_path: Path) -> None:
    from lightkube.config.models import UserExec
    from rtbuild_kubernetes.failures import ClusterAuthError
    from rtbuild_kubernetes.kubeauth import ExecAuth

    plugin = tmp_path / "plugin.sh"
    plugin.write_text(
        "#!/bin/sh\n"
        f'printf \'{{"kind":"ExecCredential","status":{{"token":"{TOKEN}"}}}}\'\n'
        f'echo "cache write failed for token {TOKEN}: read-only file system" >&2\n'
        "exit 2\n"
    )
    plugin.chmod(0o755)
    auth = ExecAuth(UserExec(apiVersion="client.authentication.k8s.io/v1", command=str(plugin)), "kubeconfig")
    with pytest.raises(ClusterAuthError) as info:
        auth._run()
    text = info.value.render()
    assert "exited with code 2" in text and "read-only file system" in text  # stderr is still shown
    assert TOKEN not in text
