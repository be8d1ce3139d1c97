"""A node that stops answering (its kubelet crashed, the machine lost power or network), as the
control plane sees it: the node lifecycle controller marks the node ``Ready=Unknown``, taints it
``node.kubernetes.io/unreachable`` and marks its pods not ready (a ``NodeNotReady`` Event each);
once a pod's toleration of that taint runs out (300 s by default, ``evict_after`` here) the
taint-eviction controller gives it a ``DisruptionTarget`` condition (``DeletionByTaintManager``)
and deletes it. No kubelet confirms the deletion, so the pod stays, Terminating, with the last
status its kubelet wrote (its containers "running"); the job controller counts a terminating
pod as failed, so a Job with ``backoffLimit: 0`` fails (``BackoffLimitExceeded``).

Clusters before 1.26 (``PodDisruptionConditions`` off) delete it without the condition
(``disruption_target=False``). A graceful delete of a pod on a lost node (``kubectl delete pod``)
only marks it Terminating, as there: no kubelet confirms it; a forced one (grace 0) removes it.

The fake stops the pod's containers at once (nothing on a lost node can be reached, and none
must be left behind) and, unlike a real cluster, removes the pod when its Job is deleted."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from .events import record_event
from .podstatus import condition
from .store import now

if TYPE_CHECKING:
    from .cluster import FakeCluster

Obj = dict[str, Any]
UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_MESSAGE = "Taint manager: deleting due to NoExecute taint"


def _node_unreachable(node: Obj) -> None:
    condition(node["status"], "Ready", False, "NodeStatusUnknown", "Kubelet stopped posting node status.")
    for entry in node["status"]["conditions"]:
        if entry["type"] == "Ready":
            entry["status"] = "Unknown"
    taints = [{"key": UNREACHABLE, "effect": effect, "timeAdded": now()} for effect in ("NoSchedule", "NoExecute")]
    node["spec"]["taints"] = taints


def unreachable(store: Any, pod: Obj) -> bool:
    """Whether ``pod``'s node has stopped answering (tainted unreachable)."""
    node = store.get("nodes", "", pod["spec"].get("nodeName") or "")
    return node is not None and any(t.get("key") == UNREACHABLE for t in node["spec"].get("taints") or [])


def node_back(node: Obj) -> None:
    """The node answers again (a test's clean-up)."""
    condition(node["status"], "Ready", True, "KubeletReady", "rtbuild fake kubelet")
    node["spec"].pop("taints", None)


async def lose_node(
    cluster: FakeCluster, namespace: str, name: str, evict_after: float | None, disruption_target: bool = True
) -> None:
    """The node running pod ``name`` stops answering; ``evict_after`` seconds later its
    taint-eviction deletes the pod (which stays Terminating); ``None``: not during the test (a
    toleration longer than it). ``disruption_target``: the deletion marks the pod (1.26 on)."""
    store, kubelet = cluster.store, cluster.kubelet
    pod = store.get("pods", namespace, name)
    if pod is None or not pod["spec"].get("nodeName"):
        raise ValueError(f"pod {namespace}/{name} is not on a node")
    task = kubelet.tasks.pop((namespace, name), None)
    if task is not None:  # the kubelet writes nothing more about its pods
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    ids = list(kubelet.containers.get((namespace, name), {}).values())
    await asyncio.gather(*(cluster.engine.stop(cid, 0) for cid in ids), return_exceptions=True)
    store.mutate("nodes", "", pod["spec"]["nodeName"], _node_unreachable)
    pod = store.mutate("pods", namespace, name, lambda p: condition(p["status"], "Ready", False))
    if pod is None:
        return
    record_event(store, pod, "NodeNotReady", "Node is not ready", "Warning", "node-controller")
    if evict_after is None:
        return
    await asyncio.sleep(evict_after)

    def evicted(p: Obj) -> None:
        if disruption_target:
            condition(p["status"], "DisruptionTarget", True, "DeletionByTaintManager", TAINT_MESSAGE)
        p["metadata"]["deletionTimestamp"] = now()
        p["metadata"]["deletionGracePeriodSeconds"] = p["spec"].get("terminationGracePeriodSeconds", 30)

    pod = store.mutate("pods", namespace, name, evicted)
    if pod is None:
        return
    message = f"Marking for deletion Pod {namespace}/{name}"
    record_event(store, pod, "TaintManagerEviction", message, "Normal", "taint-eviction-controller")
    kubelet._finished(pod)  # the job controller counts it failed
