"""A protocol-level fake Kubernetes API server with a kubelet stand-in that runs pods in the
local dockerd: test support for rtbuild's Kubernetes builder (see docs/testing/fake-cluster.md)."""

from .api import RequestRecord
from .cluster import FakeCluster
from .engine import LABEL as CONTAINER_LABEL
from .faults import Faults

__all__ = ["CONTAINER_LABEL", "FakeCluster", "Faults", "RequestRecord"]
