"""rtbuild-sbom: CycloneDX SBOM and offline OSV policy for built images (docs/plugins/sbom.md)."""

from __future__ import annotations

__version__ = "0.1.0"
