"""A build pod deleted without a DisruptionTarget condition, that no kubelet ends: a cluster
before 1.26 (its taint-eviction marks nothing), or `kubectl delete pod` of a pod on a lost node.
The pod stays Terminating with its build container "running", and rtbuild waited out the Job's
whole deadline (an hour by default) plus 60 s, then blamed the build's time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _kbuilder_support import Site, build_in_progress

RUNNING = {"name": "build", "state": {"running": {"startedAt": "2026-12-03T12:00:00Z"}}}


def _pod(**meta: Any) -> dict[str, Any]:
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [RUNNING]}
    metadata = {"name": "rtbuild-app-b1-x", **meta}
    return {"metadata": metadata, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 1}, "status": status}


class _StuckTerminating:
    """The Job is there; its pod is Terminating and never changes again: the watch only ticks."""

    namespace = "builds"

    def __init__(self, pod: dict[str, Any]) -> None:
        self.pod = pod

    def list_pods(self, selector: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
        return [self.pod], "7"

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "status": {}}

    def watch_pods(self, selector: dict[str, str], version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        from rtbuild_kubernetes.client import TICK

        while True:
            yield TICK, {}


def _run(pod: dict[str, Any]) -> Any:
    from rtbuild_kubernetes.jobrun import JobRun
    from rtbuild_kubernetes.manifests import JobPlan
    from rtbuild_kubernetes.settings import settings_from_table

    run = JobRun(
        _StuckTerminating(pod), settings_from_table({}), JobPlan(build_id="b1", namespace="builds", tags=["r/a:1"])
    )  # type: ignore[arg-type]
    run.lines = ["STEP 2/2: RUN sleep 300"]
    return run


def test_a_deleted_pod_no_kubelet_ends_is_a_disruption(monkeypatch: pytest.MonkeyPatch) -> None:
    from rtbuild_kubernetes import disruption
    from rtbuild_kubernetes.failures import PodDisruptedError
    from rtbuild_kubernetes.podstate import build_done

    monkeypatch.setattr(disruption, "STOP_MARGIN_S", 0.5, raising=False)
    pod = _pod(deletionTimestamp="2026-12-03T12:00:00Z", deletionGracePeriodSeconds=1)
    run = _run(pod)
    run.deadline = time.monotonic() + 60  # old code: waits for this, then DeadlineExceededError
    with pytest.raises(PodDisruptedError) as raised:
        run._wait(build_done, "the build to finish")
    error = raised.value
    assert "the build pod rtbuild-app-b1-x will not finish: it is being deleted" in error.message, error.message
    assert "node n1 has not stopped it" in error.message and "grace period of 1 s" in error.message
    assert "not ready" in error.message and "deadline" not in error.message
    assert "kubectl describe node n1" in (error.hint or "") and error.blame == "cluster"
    assert error.log_tail == ["STEP 2/2: RUN sleep 300"] and error.step == "build"


def test_a_deletion_still_within_its_grace_or_ended_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kubelet that answers ends the containers at the end of the grace period: no error before
    that, and none for a pod whose build container has ended (its result or failure is read)."""
    from rtbuild_kubernetes.disruption import Terminating

    watch = Terminating()
    pod = _pod(deletionTimestamp="2026-12-03T12:00:00Z", deletionGracePeriodSeconds=30)
    watch.check(pod, [])
    watch.expired([])  # 30 s of grace: far from over
    ended = _pod(deletionTimestamp="2026-12-03T12:00:00Z", deletionGracePeriodSeconds=0)
    ended["status"]["containerStatuses"] = [{"name": "build", "state": {"terminated": {"exitCode": 143}}}]
    watch.check(ended, [])
    watch.since[ended["metadata"]["name"]] = time.monotonic() - 3600
    watch.expired([])
    running = _pod()  # not being deleted at all
    watch.check(running, [])
    watch.expired([])


@pytest.mark.engine
def test_kubectl_delete_pod_on_a_lost_node_ends_the_build(
    site: Site, cluster: Any, kubectl: str, kube_env: dict[str, str]
) -> None:
    # Only noticing the pod stuck Terminating ends the build in time.
    with build_in_progress(site, cluster, "unmarked", termination_grace_period_seconds=1) as (proc, pod):
        name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
        cluster.faults.lose_node(name, evict_after=None)  # its toleration outlasts the test
        kube = [kubectl, "-n", cluster.namespace]
        deleted = subprocess.run(
            [*kube, "delete", "pod", name, "--wait=false"], env=kube_env, capture_output=True, text=True, timeout=60
        )
        assert deleted.returncode == 0, deleted.stderr
        # kubectl sees what a real cluster shows: the pod Terminating, its node gone silent.
        shown = subprocess.run(
            [*kube, "get", "pod", name, "--no-headers"], env=kube_env, capture_output=True, text=True, timeout=60
        )
        assert "Terminating" in shown.stdout or proc.poll() is not None, shown.stdout + shown.stderr
        conditions = (
            json.loads(
                subprocess.run(
                    [*kube, "get", "pod", name, "-o", "json"], env=kube_env, capture_output=True, timeout=60
                ).stdout
                or b"{}"
            )
            .get("status", {})
            .get("conditions", [])
        )
        assert not [c for c in conditions if c["type"] == "DisruptionTarget"], conditions
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-4000:]
    error = json.loads(stdout)
    assert error["error"] == "PodDisruptedError", error
    assert f"the build pod {name} will not finish: it is being deleted" in error["message"], error
    assert f"node {node} has not stopped it" in error["message"] and error["blame"] == "cluster", error
    assert "deadline" not in error["message"], error
    assert f"kubectl describe node {node}" in error["hint"], error
    cluster.wait_for(lambda: cluster.list("jobs") == [] and cluster.list("secrets") == [], timeout=60)
