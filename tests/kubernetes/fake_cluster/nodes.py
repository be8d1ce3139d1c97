"""The fake cluster's nodes and its scheduler: one node for the host's architecture, plus, when a
test asks for them, nodes for other architectures. Pods on those run on this host all the same
(the node's label says arm64, the container runs natively or under QEMU binfmt as docker decides):
they exist so that a builder's per-platform Jobs can be scheduled and their results assembled."""

from __future__ import annotations

import os
import platform
from typing import Any

Obj = dict[str, Any]
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(
    platform.machine(), platform.machine()
)
NODE = "rtbuild-fake-node"


def node_name(arch: str) -> str:
    return NODE if arch == HOST_ARCH else f"{NODE}-{arch}"


def node_labels(arch: str) -> dict[str, str]:
    return {
        "kubernetes.io/arch": arch,
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": node_name(arch),
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
    }


def node_object(arch: str) -> Obj:
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": "24Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node_name(arch), "labels": node_labels(arch)},
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": node_name(arch)},
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "rtbuild fake kubelet"}
            ],
            "nodeInfo": {
                "architecture": arch,
                "operatingSystem": "linux",
                "kubeletVersion": "v1.32.0+rtbuild-fake-cluster",
                "containerRuntimeVersion": "docker://local",
                "osImage": "rtbuild fake node on the local dockerd",
            },
        },
    }


def _term_matches(term: Obj, labels: dict[str, str]) -> bool:
    for expr in term.get("matchExpressions") or []:
        value, values = labels.get(expr["key"]), expr.get("values") or []
        op = expr["operator"]
        if (
            (op == "In" and value not in values)
            or (op == "NotIn" and value in values)
            or (op == "Exists" and value is None)
            or (op == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def _fits(spec: Obj, labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = affinity.get("nodeSelectorTerms")
    return not terms or any(_term_matches(term, labels) for term in terms)


def schedule(spec: Obj, archs: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(node name, None), or (None, the scheduler's message) when no node fits."""
    if spec.get("nodeName"):
        return spec["nodeName"], None
    for arch in archs:
        if _fits(spec, node_labels(arch)):
            return node_name(arch), None
    n = len(archs)
    return None, (
        f"0/{n} nodes are available: {n} node(s) didn't match Pod's node affinity/selector. "
        f"preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
    )
