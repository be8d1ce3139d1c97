"""Which kubeconfig rtbuild reads, against kubectl's reading of the same environment.

rtbuild in a pod (a CI runner's: GitLab's Kubernetes executor, Tekton, Jenkins agents all mount
a service-account token) with KUBECONFIG naming another cluster built in the runner's own
cluster and namespace: lightkube's ``from_env`` takes the service account first. And a
KUBECONFIG of several files (``a:b``, as kubectl merges them) was 'not found'."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.engine]


def _kubectl_view(kubectl: str, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [kubectl, "config", "view", "--minify", "-o", "yaml"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return dict(yaml.safe_load(proc.stdout))


def test_kubeconfig_wins_over_a_mounted_service_account(
    cluster: Any, kubectl: str, kube_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightkube import KubeConfig
    from rtbuild_kubernetes.client import LightkubeClient
    from rtbuild_kubernetes.settings import settings_from_table

    runner = KubeConfig.from_server("https://runner-cluster.invalid:6443", namespace="ci-runners")
    monkeypatch.setattr(KubeConfig, "from_service_account", classmethod(lambda cls, *a, **k: runner))
    monkeypatch.setenv("KUBECONFIG", kube_env["KUBECONFIG"])
    client = LightkubeClient(settings_from_table({}))
    view = _kubectl_view(kubectl, kube_env)
    assert client.server == view["clusters"][0]["cluster"]["server"] == cluster.url
    assert client.namespace == view["contexts"][0]["context"]["namespace"]
    assert client.get("Job", "no-such-job") is None  # and it answers


def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(
    cluster: Any, kubectl: str, kube_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rtbuild_kubernetes.client import LightkubeClient
    from rtbuild_kubernetes.settings import settings_from_table

    document = yaml.safe_load(Path(kube_env["KUBECONFIG"]).read_text())
    # The first file holds the current context and the cluster, its CA as a path relative to
    # itself; the second the user and another context; the third does not exist.
    ca = tmp_path / "one" / "certs" / "ca.crt"
    ca.parent.mkdir(parents=True)
    import base64

    ca.write_bytes(base64.b64decode(document["clusters"][0]["cluster"].pop("certificate-authority-data")))
    document["clusters"][0]["cluster"]["certificate-authority"] = "certs/ca.crt"
    first = {k: v for k, v in document.items() if k != "users"}
    second = {
        "apiVersion": "v1",
        "kind": "Config",
        "users": document["users"],
        "contexts": [{"name": "other", "context": {"cluster": "elsewhere", "user": "nobody"}}],
        "current-context": "other",
    }
    (tmp_path / "one" / "config").write_text(yaml.safe_dump(first))
    (tmp_path / "two").write_text(yaml.safe_dump(second))
    joined = f"{tmp_path / 'one' / 'config'}:{tmp_path / 'two'}:{tmp_path / 'missing'}"
    env = {**kube_env, "KUBECONFIG": joined}
    view = _kubectl_view(kubectl, env)
    assert view["current-context"] == document["current-context"]  # the reference: the first file's

    monkeypatch.setenv("KUBECONFIG", joined)
    client = LightkubeClient(settings_from_table({}))
    assert client.server == view["clusters"][0]["cluster"]["server"]
    assert client.namespace == view["contexts"][0]["context"]["namespace"]
    assert client.get("Job", "no-such-job") is None  # the CA file and the second file's token both work


def test_a_dry_run_reads_the_namespace_from_the_merged_list(
    kubectl: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--dry-run`` reads the kubeconfig without lightkube: it read the first file of the list
    only, and printed namespace 'default' for a context another file holds."""
    from rtbuild import BuildRequest
    from rtbuild_kubernetes.builder import KubernetesBuilder
    from rtbuild_kubernetes.settings import settings_from_table

    first = {"apiVersion": "v1", "kind": "Config", "current-context": "builds"}
    second = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "builds", "context": {"cluster": "c", "user": "u", "namespace": "team-builds"}}],
    }
    (tmp_path / "one").write_text(yaml.safe_dump(first))
    (tmp_path / "two").write_text(yaml.safe_dump(second))
    joined = f"{tmp_path / 'missing'}:{tmp_path / 'one'}:{tmp_path / 'two'}"
    view = _kubectl_view(kubectl, {"KUBECONFIG": joined, "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert view["contexts"][0]["context"]["namespace"] == "team-builds"  # the reference

    monkeypatch.setenv("KUBECONFIG", joined)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    request = BuildRequest(path=str(tmp_path / "ctx"), tags=["registry.example/team/app:1"])
    plan = KubernetesBuilder(settings_from_table({})).plan(request)
    assert "in namespace team-builds;" in plan.splitlines()[0], plan.splitlines()[0]
