"""The build pod's node is drained (`kubectl drain`: a node upgrade, a maintenance): the Eviction
API marks the pod DisruptionTarget (EvictionByEvictionAPI) and deletes it. rtbuild said "the
build pod ... was deleted ...: someone or something (a controller, a TTL) deleted the pod"."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from _kbuilder_support import Site, build_in_progress

pytestmark = [pytest.mark.engine]


def test_a_drain_during_the_build_is_named(site: Site, cluster: Any, kubectl: str, kube_env: dict[str, str]) -> None:
    with build_in_progress(site, cluster, "drained", run="sleep 300") as (proc, pod):
        node = pod["spec"]["nodeName"]
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        # What `kubectl drain` does, in JSON (its own eviction request is protobuf, which the fake
        # does not speak): cordon the node, then evict its pods through the Eviction API.
        eviction = site.root / "eviction.json"
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        eviction.write_text(json.dumps(body))
        for command in (
            ["cordon", node],
            ["create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction", "-f", str(eviction)],
        ):
            done = subprocess.run([kubectl, *command], env=kube_env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stdout + done.stderr
        try:
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            subprocess.run([kubectl, "uncordon", node], env=kube_env, capture_output=True, timeout=60)
    assert proc.returncode == 1, stderr[-4000:]
    error = json.loads(stdout)
    assert error["error"] == "PodDisruptedError", error
    assert f"evicted from node {node} through the Eviction API" in error["message"], error
    assert "EvictionByEvictionAPI" in error["message"] and error["blame"] == "cluster", error
    cluster.wait_for(lambda: cluster.list("jobs") == [] and cluster.list("secrets") == [], timeout=60)
