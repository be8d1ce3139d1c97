"""How a scan is shown: a progress event during builds, a table for ``rtbuild scan``."""

from __future__ import annotations

import rtbuild

from .scan import ScanReport, blocking
from .settings import Settings


def summary(report: ScanReport, settings: Settings) -> str:
    source = "stored SBOM reused" if report.reused else "image read"
    text = f"sbom: {report.image}: {len(report.packages)} components ({source}), SBOM {report.sbom_path}"
    if report.osv_records is None:
        return text + "; no OSV database configured"
    over = len(blocking(report, settings))
    return text + (
        f"; {len(report.findings)} finding(s) in {report.osv_records} OSV records,"
        f" {over} at or above {settings.fail_on!r}"
    )


def progress(report: ScanReport, settings: Settings) -> None:
    """One ``sbom`` event on rtbuild's progress output (stderr; stdout stays the result)."""
    rtbuild.get_reporter().event(
        "sbom",
        message=summary(report, settings),
        image=report.image,
        sbom=str(report.sbom_path),
        sbom_digest=report.sbom_digest,
        components=len(report.packages),
        findings=len(report.findings),
    )


def table(report: ScanReport, settings: Settings) -> str:
    """Findings as aligned text rows, most severe first."""
    from .severity import RANK, UNKNOWN

    def rank(level: str) -> int:
        return RANK[settings.unknown_severity] if level == UNKNOWN else RANK[level]

    rows = [("ID", "SEVERITY", "PACKAGE", "INSTALLED", "FIXED")]
    for f in sorted(report.findings, key=lambda f: (-rank(f.severity), f.package, f.id)):
        name = f.package if f.osv_name == f.package else f"{f.package} ({f.osv_name})"
        rows.append((f.id, f.severity, name, f.installed, f.fixed or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


__all__ = ["progress", "summary", "table"]
