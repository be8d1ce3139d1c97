"""What ``rtbuild scan IMAGE`` runs (the click command itself lives in the core CLI)."""

from __future__ import annotations

import dataclasses
from typing import Any

import rtbuild

from .scan import SbomPolicyError, ScanReport, blocking, enforce, scan_image
from .settings import Settings, config_table


@dataclasses.dataclass
class ScanOutcome:
    report: ScanReport
    settings: Settings
    error: SbomPolicyError | None

    def to_dict(self) -> dict[str, Any]:
        data = self.report.to_dict()
        data["policy"] = {
            "fail_on": self.settings.fail_on,
            "unknown_severity": self.settings.unknown_severity,
            "blocking": len(blocking(self.report, self.settings)),
            "passed": self.error is None,
        }
        return data


def run_scan(
    image: str,
    config: rtbuild.Config,
    builder: Any = None,
    *,
    osv_db: str | None = None,
    fail_on: str | None = None,
) -> ScanOutcome:
    """Scan ``image`` with ``[plugins.sbom]`` settings (``enabled`` is not needed), flags winning."""
    table = config_table(config)  # a flag's relative path stays relative to the current directory
    if osv_db is not None:
        table["osv_db"] = osv_db
    if fail_on is not None:
        table["fail_on"] = fail_on
    settings = Settings.from_table(table)
    report = scan_image(image, settings, builder)
    try:
        enforce(report, settings)
    except SbomPolicyError as exc:
        return ScanOutcome(report, settings, exc)
    return ScanOutcome(report, settings, None)


def summary(outcome: ScanOutcome) -> str:
    """One line for rtbuild's progress output."""
    from .report import summary as report_summary

    return report_summary(outcome.report, outcome.settings)


def table(outcome: ScanOutcome) -> str:
    """The findings table ``rtbuild scan`` prints on stdout."""
    from .report import table as report_table

    return report_table(outcome.report, outcome.settings)


__all__ = ["ScanOutcome", "run_scan", "summary", "table"]
