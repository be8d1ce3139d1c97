"""The node running the build pod stops answering (a crashed kubelet, a machine lost): the
taint-eviction controller deletes the pod once its toleration of node.kubernetes.io/unreachable
runs out, and the job controller fails the Job, but no kubelet is there to end the pod's
containers, so the pod stays Terminating with its build container "running". rtbuild waited
for that container until the Job's whole deadline (an hour by default) plus 60 s, and then
blamed the build's time."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from _kbuilder_support import Site, build_in_progress

pytestmark = [pytest.mark.engine]


def test_a_lost_node_ends_the_build_with_that_reason(
    site: Site, cluster: Any, kubectl: str, kube_env: dict[str, str]
) -> None:
    with build_in_progress(site, cluster, "nodelost") as (proc, pod):
        name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]

        def logged() -> bool:
            log = [kubectl, "logs", name, "-c", "build", "-n", cluster.namespace]
            return "started" in subprocess.run(log, env=kube_env, capture_output=True, text=True, timeout=60).stdout

        cluster.wait_for(lambda: logged() or proc.poll() is not None, timeout=180, interval=0.5)
        cluster.faults.lose_node(name, evict_after=3.0)
        # kubectl sees what a real cluster shows: the node's Ready Unknown, the pod Terminating.
        ready = subprocess.run(
            [kubectl, "get", "node", node, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'],
            env=kube_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert ready.stdout == "Unknown", ready.stdout + ready.stderr
        shown = subprocess.run(
            [kubectl, "get", "pod", name, "-n", cluster.namespace, "--no-headers"],
            env=kube_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "Terminating" in shown.stdout or proc.poll() is not None, shown.stdout + shown.stderr
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-4000:]
    error = json.loads(stdout)
    assert error["error"] == "PodDisruptedError", error
    assert f"node {node} stopped answering" in error["message"], error
    assert "DeletionByTaintManager" in error["message"] and error["blame"] == "cluster", error
    assert f"kubectl describe node {node}" in error["hint"], error
    assert "deadline" not in error["message"], error
    assert any("started" in line for line in error["log_tail"]), error
    # Before the eviction, while the pod was only not ready, rtbuild said what it waits for.
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    warned = [e["message"] for e in events if e.get("event") == "warning" and "no longer ready" in e.get("message", "")]
    assert len(warned) == 1 and f"its node {node} may have stopped answering" in warned[0], stderr[-4000:]
    assert f"kubectl describe node {node}" in warned[0] and "300 s" in warned[0], warned
    cluster.wait_for(lambda: cluster.list("jobs") == [] and cluster.list("secrets") == [], timeout=60)


@pytest.mark.parametrize(
    ("reason", "said", "blame"),
    [
        ("DeletionByTaintManager", "node n1 stopped answering", "cluster"),
        ("EvictionByEvictionAPI", "evicted from node n1 through the Eviction API", "cluster"),
        ("PreemptionByScheduler", "preempted on node n1", "cluster capacity"),
        ("DeletionByPodGC", "node n1 no longer exists", "cluster"),
        ("TerminationByKubelet", "kubelet stopped it (the node shutting down", "cluster"),
        ("SomethingNew", "the cluster is stopping it on node n1", "cluster"),
    ],
)
def test_each_disruption_reason_is_named(reason: str, said: str, blame: str) -> None:
    from rtbuild_kubernetes.disruption import disrupted_error
    from rtbuild_kubernetes.failures import PodDisruptedError

    condition = {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": "why"}
    status = {"phase": "Running", "conditions": [condition]}
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": status}
    error = disrupted_error(pod, ["line"])
    assert isinstance(error, PodDisruptedError), error
    assert said in error.message and f"({reason}: why)" in error.message and error.blame == blame
    assert error.log_tail == ["line"] and error.step == "build"
    # Without the condition, or with it False (a disruption called off), the pod goes on.
    condition["status"] = "False"
    assert disrupted_error(pod, []) is None
    del status["conditions"]
    assert disrupted_error(pod, []) is None


def test_a_build_that_ended_well_before_a_disruption_keeps_its_result() -> None:
    """A drain right after the build container exited 0 marks the pod too: the build stands."""
    from rtbuild_kubernetes.disruption import disrupted_error

    condition = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    ended = {"name": "build", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    status = {"phase": "Running", "conditions": [condition], "containerStatuses": [ended]}
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": status}
    assert disrupted_error(pod, []) is None
    ended["state"] = {"terminated": {"exitCode": 143, "reason": "Error"}}  # killed by it: the disruption's error
    assert disrupted_error(pod, []) is not None
    ended["state"] = {"running": {}}
    assert disrupted_error(pod, []) is not None


def test_not_ready_is_said_once_and_only_for_a_running_build_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    import rtbuild_kubernetes.disruption as disruption

    said: list[str] = []

    class Reporter:
        def event(self, kind: str, **fields: str) -> None:
            said.append(fields["message"])

    monkeypatch.setattr(disruption, "get_reporter", Reporter)
    running = {"name": "build", "state": {"running": {}}}
    status = {"conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [running]}
    pod: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": status}
    watch = disruption.NodeWatch()
    pod["metadata"]["deletionTimestamp"] = "2026-12-03T12:00:00Z"  # being deleted: not ready, no node fault
    watch.check(pod)
    del pod["metadata"]["deletionTimestamp"]
    running["state"] = {"waiting": {"reason": "ContainerCreating"}}  # not started yet: not ready as usual
    watch.check(pod)
    assert said == []
    running["state"] = {"running": {}}
    watch.check(pod, "[linux/arm64] ")
    watch.check(pod)
    assert len(said) == 1 and said[0].startswith("[linux/arm64] the build pod p is no longer ready"), said
