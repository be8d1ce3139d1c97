"""The fake cluster's garbage collector and the kubelet's wait for a missing Secret, driven by
the real kubectl: what the Kubernetes builder relies on to leave no Secret behind (each build's
Secret is created after its Job and owned by it)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import BUSYBOX
from fake_cluster import FakeCluster

pytestmark = [pytest.mark.engine, pytest.mark.timeout(120)]
Obj = dict[str, Any]


class Kubectl:
    def __init__(self, path: str, env: dict[str, str], tmp: Path) -> None:
        self.path, self.env, self.tmp = path, env, tmp

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.path, *args], capture_output=True, text=True, env=self.env, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} -> {proc.returncode}: {proc.stderr[-2000:]}")
        return proc

    def json(self, *args: str) -> Obj:
        result: Obj = json.loads(self.run(*args, "-o", "json").stdout)
        return result

    def apply(self, manifest: Obj) -> None:
        path = self.tmp / f"{manifest['kind']}-{manifest['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(manifest))
        self.run("apply", "-f", str(path))

    def exists(self, kind: str, name: str) -> bool:
        proc = self.run("get", kind, name, "-o", "name", check=False)
        assert proc.returncode == 0 or "NotFound" in proc.stderr, proc.stderr
        return proc.returncode == 0


@pytest.fixture
def kctl(kubectl: str, kube_env: dict[str, str], tmp_path: Path) -> Kubectl:
    return Kubectl(kubectl, kube_env, tmp_path)


def _job(name: str, command: list[str], **spec: Any) -> Obj:
    container: Obj = {"name": "main", "image": BUSYBOX, "command": command}
    pod: Obj = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container]}
    if spec.pop("secret", None):
        pod["volumes"] = [{"name": "creds", "secret": {"secretName": f"{name}-creds"}}]
        container["volumeMounts"] = [{"name": "creds", "mountPath": "/creds", "readOnly": True}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": pod}, **spec},
    }


def _owned_secret(name: str, *owners: tuple[str, str, str, str]) -> Obj:
    refs = [
        {"apiVersion": api, "kind": kind, "name": owner, "uid": uid, "blockOwnerDeletion": False}
        for api, kind, owner, uid in owners
    ]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, **({"ownerReferences": refs} if refs else {})},
        "stringData": {"token": "s3cret"},
    }


def _uid(kctl: Kubectl, kind: str, name: str) -> str:
    return str(kctl.json("get", kind, name)["metadata"]["uid"])


def test_kubectl_delete_job_collects_the_secrets_it_owns(cluster: FakeCluster, kctl: Kubectl) -> None:
    kctl.apply(_job("owner", ["sleep", "60"]))
    kctl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other-owner"}, "data": {"a": "b"}})
    job = ("batch/v1", "Job", "owner", _uid(kctl, "job", "owner"))
    other = ("v1", "ConfigMap", "other-owner", _uid(kctl, "configmap", "other-owner"))
    kctl.apply(_owned_secret("owned", job))
    kctl.apply(_owned_secret("two-owners", job, other))
    kctl.apply(_owned_secret("unowned"))
    assert kctl.json("get", "secret", "owned")["metadata"]["ownerReferences"][0]["uid"] == job[3]
    kctl.run("delete", "job", "owner")  # kubectl's default cascade is background
    cluster.wait_for(lambda: not kctl.exists("secret", "owned"))
    cluster.wait_for(lambda: not cluster.list("pods", label_selector="job-name=owner"))

    # An owner left keeps its dependent, whose dangling reference the collector strips.
    def stripped() -> list[Obj] | None:
        refs: list[Obj] = kctl.json("get", "secret", "two-owners")["metadata"]["ownerReferences"]
        return refs if len(refs) == 1 else None

    refs = cluster.wait_for(stripped)
    assert refs[0]["kind"] == "ConfigMap"
    assert kctl.exists("secret", "unowned")


def test_kubectl_delete_job_cascade_orphan_keeps_the_secret(cluster: FakeCluster, kctl: Kubectl) -> None:
    kctl.apply(_job("orphaner", ["sleep", "60"]))
    kctl.apply(_owned_secret("kept", ("batch/v1", "Job", "orphaner", _uid(kctl, "job", "orphaner"))))
    kctl.run("delete", "job", "orphaner", "--cascade=orphan")
    cluster.wait_for(lambda: cluster.get("jobs", "orphaner") is None)
    cluster.wait_for(lambda: "ownerReferences" not in kctl.json("get", "secret", "kept")["metadata"])
    for pod in cluster.list("pods", label_selector="job-name=orphaner"):
        kctl.run("delete", "pod", pod["metadata"]["name"], "--grace-period=0", "--force")


def test_a_jobs_ttl_collects_the_secret_it_owns(cluster: FakeCluster, kctl: Kubectl) -> None:
    kctl.apply(_job("ttl-owner", ["sleep", "1"], ttlSecondsAfterFinished=1))
    kctl.apply(_owned_secret("ttl-owned", ("batch/v1", "Job", "ttl-owner", _uid(kctl, "job", "ttl-owner"))))
    kctl.run("wait", "--for=condition=Complete", "job/ttl-owner", "--timeout=60s")
    assert kctl.exists("secret", "ttl-owned")  # while its Job exists
    cluster.wait_for(lambda: not kctl.exists("job", "ttl-owner"))
    cluster.wait_for(lambda: not kctl.exists("secret", "ttl-owned"))


def test_a_secret_whose_owner_does_not_exist_is_collected(cluster: FakeCluster, kctl: Kubectl) -> None:
    kctl.apply(_job("real-owner", ["sleep", "60"]))
    uid = _uid(kctl, "job", "real-owner")
    kctl.apply(_owned_secret("wrong-uid", ("batch/v1", "Job", "real-owner", "00000000-0000-0000-0000-000000000000")))
    kctl.apply(_owned_secret("no-such-job", ("batch/v1", "Job", "no-such-job", uid)))
    kctl.apply(_owned_secret("right-uid", ("batch/v1", "Job", "real-owner", uid)))
    cluster.wait_for(lambda: not kctl.exists("secret", "wrong-uid") and not kctl.exists("secret", "no-such-job"))
    assert kctl.exists("secret", "right-uid")


def test_a_pod_waits_for_a_secret_created_after_its_job(cluster: FakeCluster, kctl: Kubectl) -> None:
    kctl.apply(_job("later", ["cat", "/creds/token"], secret=True))

    def failed_mount() -> Obj | None:
        events = kctl.json("get", "events", "--field-selector", "reason=FailedMount")["items"]
        return next((e for e in events if 'secret "later-creds" not found' in e["message"]), None)

    cluster.wait_for(failed_mount)
    pods = kctl.json("get", "pods", "-l", "job-name=later")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Pending"]
    kctl.apply(_owned_secret("later-creds", ("batch/v1", "Job", "later", _uid(kctl, "job", "later"))))
    kctl.run("wait", "--for=condition=Complete", "job/later", "--timeout=60s")
    assert kctl.run("logs", "job/later").stdout == "s3cret"
