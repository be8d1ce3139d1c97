"""rtbuild-kubernetes: builds as Kubernetes Jobs. Importing this package stays light: the
Kubernetes client (lightkube) is imported only when a build talks to a cluster."""

from __future__ import annotations

__all__: list[str] = []
