"""A build pod the cluster itself takes away: evicted by its node's kubelet (``Evicted``), or
marked for deletion with a ``DisruptionTarget`` condition (GA in 1.31, on by default since 1.26):
its node stopped answering and the taint-eviction controller deleted it, a drain evicted it,
the scheduler preempted it, the pod garbage collector removed it with its node.

A lost node is the case that matters most: no kubelet is left to end the pod's containers, so
the pod stays Terminating with its build container "running" for as long as the node is away,
while its Job has already failed. rtbuild waited for that container until the Job's deadline
(an hour by default) and then blamed the build's time."""

from __future__ import annotations

import time
from typing import Any

from rtbuild import get_reporter

from .failures import TAIL, EvictedError, KubernetesBuildError, PodDisruptedError
from .manifests import BUILD_CONTAINER

#: DisruptionTarget reasons: what happened (with ``{node}``), the hint, whose move it is.
_REASONS = {
    "DeletionByTaintManager": (
        "its node {node} stopped answering (or was tainted NoExecute), and the cluster deleted the pod",
        "`kubectl describe node {node}` says why (NotReady, unreachable, a NoExecute taint); run the build"
        " again: the new pod goes to a node that answers",
        "cluster",
    ),
    "DeletionByPodGC": (
        "its node {node} no longer exists (removed or scaled down), and the pod went with it",
        "run the build again; if a cluster autoscaler removed the node, mark build pods"
        " cluster-autoscaler.kubernetes.io/safe-to-evict=false",
        "cluster",
    ),
    "EvictionByEvictionAPI": (
        "it was evicted from node {node} through the Eviction API (kubectl drain, a node upgrade, a descheduler)",
        "run the build again once the node's maintenance is over",
        "cluster",
    ),
    "TerminationByKubelet": (
        "its node {node}'s kubelet stopped it (the node shutting down, or short of resources)",
        "`kubectl describe node {node}` says why; run the build again",
        "cluster",
    ),
    "PreemptionByScheduler": (
        "it was preempted on node {node} to make room for a pod of higher priority",
        "run the build again, or give build pods a higher PriorityClass (`kubectl get priorityclass`)",
        "cluster capacity",
    ),
}


def _built(pod: dict[str, Any]) -> bool:
    """Whether the build ended well before the disruption (a drain right after it): its result stands."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        if container.get("name") == BUILD_CONTAINER:
            ended = (container.get("state") or {}).get("terminated") or {}
            return bool(ended) and int(ended.get("exitCode") or 0) == 0
    return status.get("phase") == "Succeeded"


def disrupted_error(pod: dict[str, Any], lines: list[str]) -> KubernetesBuildError | None:
    """The error for a pod the cluster evicted or is deleting of its own accord, else ``None``."""
    name = (pod.get("metadata") or {}).get("name", "?")
    status = pod.get("status") or {}
    if status.get("reason") == "Evicted":
        return EvictedError(
            f"the node evicted the build pod {name}: {status.get('message', '')}",
            step="build",
            log_tail=lines[-TAIL:],
            hint="the node ran short of resources; raise the requests so it is placed on a node with room",
            blame="cluster capacity",
        )
    marked = [
        c for c in status.get("conditions") or [] if c.get("type") == "DisruptionTarget" and c.get("status") == "True"
    ]
    if not marked or _built(pod):
        return None
    reason = str(marked[-1].get("reason") or "DisruptionTarget")
    said = f"{reason}: {marked[-1].get('message')}" if marked[-1].get("message") else reason
    node = (pod.get("spec") or {}).get("nodeName") or "?"
    what, hint, blame = _REASONS.get(
        reason,
        (
            "the cluster is stopping it on node {node}",
            "`kubectl describe pod` and `kubectl describe node {node}` say why; run the build again",
            "cluster",
        ),
    )
    return PodDisruptedError(
        f"the build pod {name} will not finish: {what.format(node=node)} ({said})",
        step="build",
        log_tail=lines[-TAIL:],
        hint=hint.format(node=node),
        blame=blame,
    )


class NodeWatch:
    """Says once that the build pod's node stopped answering: the node lifecycle controller
    marks the pods of a node gone silent (40 s) not Ready, while their containers still show
    running; the pods are deleted only when their toleration of the unreachable taint runs out
    (300 s by default), and rtbuild was silent until then."""

    def __init__(self) -> None:
        self.told = False

    def check(self, pod: dict[str, Any], prefix: str = "") -> None:
        status = pod.get("status") or {}
        ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        build = [c for c in status.get("containerStatuses") or [] if c.get("name") == BUILD_CONTAINER]
        running = bool(build) and "running" in (build[0].get("state") or {})
        deleting = (pod.get("metadata") or {}).get("deletionTimestamp")  # a terminating pod is not ready either
        if self.told or ready != ["False"] or not running or deleting:
            return
        self.told = True
        name = (pod.get("metadata") or {}).get("name", "?")
        node = (pod.get("spec") or {}).get("nodeName") or "?"
        get_reporter().event(
            "warning",
            pod=name,
            message=f"{prefix}the build pod {name} is no longer ready while its build runs: its node {node} may have"
            " stopped answering. The cluster deletes its pods once their toleration of node.kubernetes.io/unreachable"
            f" runs out (300 s by default); rtbuild waits. `kubectl describe node {node}`",
        )


#: Beyond a deleted pod's grace period, how long its kubelet gets to report its containers ended
#: (SIGKILL at the end of the grace, then a status update: seconds on a node that answers).
STOP_MARGIN_S = 15.0


class Terminating:
    """A build pod deleted without a ``DisruptionTarget`` condition (clusters before 1.26, whose
    taint-eviction marks nothing; ``kubectl delete pod`` of a pod on a lost node): no kubelet ends
    its containers, so it stays Terminating, its build container "running", and rtbuild waited out
    the Job's whole deadline (an hour by default) plus 60 s. A kubelet that answers kills the
    containers at the end of the pod's grace period; once rtbuild has seen the pod Terminating
    for that long plus :data:`STOP_MARGIN_S` (measured here: no clock of the cluster's is read),
    its node is taken as lost."""

    def __init__(self) -> None:
        self.since: dict[str, float] = {}  # pod name: when first seen Terminating, still running
        self.pods: dict[str, dict[str, Any]] = {}

    def check(self, pod: dict[str, Any], lines: list[str]) -> None:
        """On each sight of a pod: note a deletion, and raise once it has outlasted its grace."""
        name = (pod.get("metadata") or {}).get("name", "?")
        if not (pod.get("metadata") or {}).get("deletionTimestamp") or _ended(pod):
            self.since.pop(name, None)
            self.pods.pop(name, None)
            return
        self.since.setdefault(name, time.monotonic())
        self.pods[name] = pod
        self.expired(lines)

    def expired(self, lines: list[str]) -> None:
        """Raise for a pod seen Terminating past its grace period and the margin (on each watch tick too)."""
        for name, pod in self.pods.items():
            meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            grace = meta.get("deletionGracePeriodSeconds")
            grace = int(grace if grace is not None else spec.get("terminationGracePeriodSeconds") or 30)
            waited = time.monotonic() - self.since[name]
            if waited > grace + STOP_MARGIN_S:
                raise _stuck_error(pod, grace, waited, lines)


def _ended(pod: dict[str, Any]) -> bool:
    """Whether the pod's build has ended (its container terminated, or the pod done): the wait reads that."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    build = [c for c in status.get("containerStatuses") or [] if c.get("name") == BUILD_CONTAINER]
    return bool(build) and "terminated" in (build[0].get("state") or {})


def _stuck_error(pod: dict[str, Any], grace: int, waited: float, lines: list[str]) -> PodDisruptedError:
    name = (pod.get("metadata") or {}).get("name", "?")
    node = (pod.get("spec") or {}).get("nodeName") or "?"
    ready = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    said = " (the pod is not ready: its node stopped reporting)" if ready and ready[0].get("status") != "True" else ""
    return PodDisruptedError(
        f"the build pod {name} will not finish: it is being deleted, and its node {node} has not stopped it"
        f" {int(waited)} s later, past its grace period of {grace} s{said}: the node has most likely stopped"
        " answering (lost, or its kubelet down), and a pod there stays Terminating until the node is back or gone",
        step="build",
        log_tail=lines[-TAIL:],
        hint=f"`kubectl describe node {node}` says whether it is NotReady or gone; run the build again: the new"
        f" pod goes to a node that answers. Once the node is known to be down, `kubectl delete pod {name}"
        " --grace-period=0 --force` removes the pod object",
        blame="cluster",
    )


__all__ = ["STOP_MARGIN_S", "NodeWatch", "Terminating", "disrupted_error"]
