"""Kubeconfig users the way cloud clusters write them: an exec credential plugin (EKS, GKE,
AKS/kubelogin) or a token file. kubectl, the reference, reaches the fake cluster with each;
rtbuild used lightkube's own handling, which refuses ``client.authentication.k8s.io/v1``
plugins, passes no ``KUBERNETES_EXEC_INFO``, and let a missing plugin, a failing one or an
unreadable token file out as an internal error after a "could not delete everything" warning
for a build that had created nothing."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from _kbuilder_support import clean_env, rtbuild, write_config

pytestmark = [pytest.mark.engine]


def _plugin(root: Path, token: str, *, fail: bool = False, expires: str = "2999-01-01T00:00:00Z") -> Path:
    """An exec plugin: records its KUBERNETES_EXEC_INFO and how often it ran, prints a token."""
    script = root / "plugin.sh"
    status = json.dumps({"token": token, "expirationTimestamp": expires})
    body = (
        'echo "SSO session expired, run aws sso login" >&2; exit 3'
        if fail
        else f'printf \'{{"kind": "ExecCredential", "apiVersion": "%s", "status": {status}}}\' "$PLUGIN_API"'
    )
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$KUBERNETES_EXEC_INFO" >> {root}/exec-info\n{body}\n'  # one line a run
    )
    script.chmod(0o755)
    return script


def _kubeconfig(cluster: Any, root: Path, user: dict[str, Any]) -> Path:
    document = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    document["users"][0]["user"] = user
    path = root / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("api", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
def test_an_exec_plugin_user_reaches_the_cluster_as_with_kubectl(
    cluster: Any, kubectl: str, tmp_path: Path, api: str
) -> None:
    from rtbuild_kubernetes.client import LightkubeClient
    from rtbuild_kubernetes.settings import settings_from_table

    plugin = _plugin(tmp_path, cluster.token)
    spec = {"apiVersion": api, "command": str(plugin), "env": [{"name": "PLUGIN_API", "value": api}]}
    user = {"exec": {**spec, "interactiveMode": "Never"} if api.endswith("/v1") else spec}  # as kubectl wants
    kubeconfig = _kubeconfig(cluster, tmp_path, user)
    env = clean_env(KUBECONFIG=str(kubeconfig), HOME=str(tmp_path), KUBECACHEDIR=str(tmp_path / "cache"))
    reference = subprocess.run([kubectl, "get", "jobs"], env=env, capture_output=True, text=True, timeout=60)
    assert reference.returncode == 0, reference.stderr  # the reference client takes this user
    (tmp_path / "exec-info").unlink()

    client = LightkubeClient(settings_from_table({"kubeconfig": str(kubeconfig)}))
    assert client.get("Job", "no-such-job") is None
    assert client.list_pods({"app": "none"})[0] == []
    runs = [json.loads(line) for line in (tmp_path / "exec-info").read_text().splitlines()]
    assert len(runs) == 1, runs  # the token is kept until it expires
    assert runs[0] == {"apiVersion": api, "kind": "ExecCredential", "spec": {"interactive": False}}


@pytest.mark.parametrize("case", ["missing plugin", "failing plugin", "unreadable token file", "unknown version"])
def test_a_kubeconfig_user_rtbuild_cannot_use_is_its_own_error_and_creates_nothing(
    cluster: Any, tmp_path: Path, case: str
) -> None:
    plugin = _plugin(tmp_path, "unused", fail=True)
    user: dict[str, Any] = {
        "missing plugin": {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "no-such-auth-plugin",
                "installHint": "see https://example.invalid/install",
            }
        },
        "failing plugin": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}},
        "unreadable token file": {"tokenFile": str(tmp_path / "no-such-token")},
        "unknown version": {"exec": {"apiVersion": "client.authentication.k8s.io/v2", "command": str(plugin)}},
    }[case]
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    config = write_config(tmp_path / "rtbuild.toml", _kubeconfig(cluster, tmp_path, user), skip_unchanged=False)
    env = clean_env(RTBUILD_CONFIG=str(config), HOME=str(tmp_path))
    args = ("build", str(context), "--builder", "kubernetes", "-t", "127.0.0.1:9/team/auth:1", "--json")
    proc = rtbuild(*args, cwd=tmp_path, env=env, timeout=300)
    error = json.loads(proc.stdout)
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "could not delete" not in proc.stderr, proc.stderr[-3000:]  # nothing was created
    assert error["step"] == "connect to cluster", error
    if case == "failing plugin":
        assert proc.returncode == 1 and error["error"] == "ClusterAuthError", error
        assert "exited with code 3" in error["message"] and "SSO session expired" in str(error["log_tail"]), error
    else:
        assert proc.returncode == 2 and error["error"] == "ConfigError", error
    if case == "missing plugin":
        assert "no-such-auth-plugin" in error["message"] and "example.invalid/install" in error["hint"], error
    assert cluster.created("jobs") == 0 and cluster.created("secrets") == 0


def test_an_exec_token_is_fetched_again_once_expired_or_refused(tmp_path: Path) -> None:
    """Not for every request while it lasts; again near its expirationTimestamp (a build longer
    than an EKS token's 15 minutes), and once when the API answers 401 (revoked early)."""
    import httpx2
    from lightkube.config.models import NameValue, UserExec
    from rtbuild_kubernetes.kubeauth import ExecAuth

    api = "client.authentication.k8s.io/v1beta1"
    env = [NameValue(name="PLUGIN_API", value=api)]

    def runs() -> int:
        info = tmp_path / "exec-info"
        return len(info.read_text().splitlines()) if info.exists() else 0

    def send(auth: ExecAuth, status: int = 200) -> str:
        flow = auth.sync_auth_flow(httpx2.Request("GET", "https://127.0.0.1:6443/api"))
        request = next(flow)
        with contextlib.suppress(StopIteration):
            request = flow.send(httpx2.Response(status))
        return request.headers["Authorization"]

    lasting = ExecAuth(UserExec(apiVersion=api, command=str(_plugin(tmp_path, "tok-1")), env=env), "kubeconfig")
    assert [send(lasting), send(lasting)] == ["Bearer tok-1"] * 2 and runs() == 1
    assert send(lasting, 401) == "Bearer tok-1" and runs() == 2  # refused: fetched again, once

    expired = _plugin(tmp_path, "tok-2", expires="2020-01-01T00:00:00Z")
    stale = ExecAuth(UserExec(apiVersion=api, command=str(expired), env=env), "kubeconfig")
    assert [send(stale), send(stale)] == ["Bearer tok-2"] * 2 and runs() == 4


@pytest.mark.registry
def test_a_whole_build_runs_with_an_exec_plugin_user(site: Any, cluster: Any, tmp_path: Path) -> None:
    """Every call a build makes (the Job, the pod watch, the context upload over the exec
    websocket, the log) carries the plugin's token."""
    from _kbuilder_support import step_image_tag

    api = "client.authentication.k8s.io/v1"
    user = {
        "exec": {
            "apiVersion": api,
            "command": str(_plugin(tmp_path, cluster.token)),
            "env": [{"name": "PLUGIN_API", "value": api}],
            "interactiveMode": "Never",
        }
    }
    config = write_config(site.root / "rtbuild.toml", _kubeconfig(cluster, tmp_path, user), step_image=step_image_tag())
    context = site.context("execuser", "FROM BASE\nRUN echo built-with-an-exec-user\n")
    args = ("build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/execuser:1")
    proc = rtbuild(*args, cwd=site.root, env=site.env(RTBUILD_CONFIG=str(config)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "built-with-an-exec-user" in proc.stderr
    assert len((tmp_path / "exec-info").read_text().splitlines()) == 1  # one run for the whole build
    assert cluster.requests_for("create", "pods/exec"), "the upload went through the exec websocket"
