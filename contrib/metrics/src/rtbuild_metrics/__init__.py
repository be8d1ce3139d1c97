"""rtbuild-metrics: append one JSON line per build to a metrics file (see docs/plugins/metrics.md)."""

from __future__ import annotations

__version__ = "0.1.0"
