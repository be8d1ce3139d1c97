"""An API server that answers slowly: a request held in an API Priority and Fairness queue, a
slow etcd, an admission webhook taking its time (timeoutSeconds up to 30 s). kubectl and
client-go wait for the answer; rtbuild gave up after lightkube's 10 s, called the cluster
"unreachable" (hint: check the kubeconfig's server address) and deleted the Job the API
server had created meanwhile."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from _kbuilder_support import RTBUILD, Site, step_image_tag, write_config

pytestmark = [pytest.mark.engine]

LATE_S = 12  # beyond lightkube's 10 s default, well within the API server's own 60 s


def test_kubectl_waits_for_a_slow_answer(cluster: Any, kubectl: str, kube_env: dict[str, str]) -> None:
    """The reference client: a list answered LATE_S late is an answer."""
    cluster.faults.slow_next(1, LATE_S, "list", "pods")
    listed = subprocess.run(
        [kubectl, "get", "pods", "-n", cluster.namespace, "-o", "name"],
        env=kube_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [r.status for r in cluster.requests_for("list", "pods")] == [200]


def test_a_job_create_answered_late_is_waited_for(site: Site, cluster: Any) -> None:
    config = write_config(site.root / "rtbuild.toml", cluster.kubeconfig_path, step_image=step_image_tag())
    context = site.context("slowapi", "FROM BASE\nRUN echo slow-api > /slow.txt\n")
    cluster.faults.slow_next(1, LATE_S, "create", "jobs")
    tag = f"{site.registry}/team/slowapi:1"
    proc = subprocess.run(
        [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", tag],
        cwd=site.root, env=site.env(RTBUILD_CONFIG=str(config)), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().startswith(tag), proc.stdout
    assert "unreachable" not in proc.stderr and "deleted Job" not in proc.stderr, proc.stderr[-4000:]
    assert len(cluster.requests_for("create", "jobs")) == 1  # one create, answered late, not retried
