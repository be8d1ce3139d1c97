"""The check both ``post_build`` and ``rtbuild scan`` run: SBOM (stored or made), OSV match, policy."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rtbuild

from .document import load_packages, make_bom_json, sbom_path, write_atomic
from .image_fs import ImageReadError, engine_command, read_files
from .inventory import Package, inventory, wanted
from .osv import Finding, OsvDatabase
from .settings import Settings
from .severity import RANK, UNKNOWN

#: How many findings an error message lists before "... and N more".
MAX_LISTED = 20


class SbomPolicyError(rtbuild.PolicyError):
    """The image has known vulnerabilities at or above ``[plugins.sbom] fail_on``.

    Raised by the rtbuild-sbom plugin (step ``sbom scan``); ``findings`` holds them all.
    Its exit code is :class:`rtbuild.PolicyError`'s.
    The image was built (and pushed, if asked) before the check ran: ``post_build`` runs last.
    """

    def __init__(self, message: str, findings: list[Finding], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.findings = findings

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["findings"] = [finding.to_dict() for finding in self.findings]
        return data


@dataclass
class ScanReport:
    image: str
    image_id: str | None
    sbom_path: Path | None
    sbom_digest: str | None
    packages: list[Package]
    findings: list[Finding] = field(default_factory=list)
    reused: bool = False  # the SBOM came from the store, the image was not read
    osv_records: int | None = None  # None: no OSV database configured

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "image_id": self.image_id,
            "sbom": str(self.sbom_path) if self.sbom_path else None,
            "sbom_digest": self.sbom_digest,
            "components": len(self.packages),
            "reused": self.reused,
            "osv_records": self.osv_records,
            "findings": [finding.to_dict() for finding in self.findings],
        }


def image_id(image: str, builder: Any, cli: list[str], env: dict[str, str]) -> str | None:
    """The image's ID from the builder (``inspect_image``/``image_id``), else the engine CLI."""
    for method in ("image_id", "inspect_image"):
        call = getattr(builder, method, None)
        if not callable(call):
            continue
        try:
            info = call(image)
        except rtbuild.AgentRuntimeBuildError:
            info = None
        value = info if isinstance(info, str) else getattr(info, "id", None)
        if value is None and isinstance(info, dict):
            value = info.get("Id")
        if isinstance(value, str) and value:
            return value
    try:
        cmd = [*cli, "image", "inspect", "--format", "{{.Id}}", image]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def scan_image(image: str, settings: Settings, builder: Any = None) -> ScanReport:
    """SBOM of ``image`` (reused when stored for its ID) and its OSV findings after ``ignore``."""
    cli, env = engine_command(builder, settings.engine)
    # A configured engine CLI may not be the builder's engine: ask that CLI for the ID.
    ident = image_id(image, None if settings.engine else builder, cli, env)
    if ident is None:
        raise ImageReadError(
            f"sbom: image {image!r} is not in the local engine",
            step="sbom scan",
            hint="build or pull it first; `rtbuild scan` reads local images only",
        )
    path = sbom_path(settings.dir, ident)
    stored = load_packages(path)
    if stored is not None:
        packages, digest = stored
        report = ScanReport(image, ident, path, digest, packages, reused=True)
    else:
        release, packages = inventory(read_files(ident, wanted, cli, env))
        digest = write_atomic(path, make_bom_json(image, ident, release, packages))
        report = ScanReport(image, ident, path, digest, packages)
    if settings.osv_db is not None:
        database = OsvDatabase.load(settings.osv_db, index_dir=settings.dir, packages=report.packages)
        report.osv_records = database.count
        report.findings = [f for f in database.match(report.packages) if not ({f.id, *f.aliases} & settings.ignore)]
    return report


def _rank(finding: Finding, settings: Settings) -> int:
    level = settings.unknown_severity if finding.severity == UNKNOWN else finding.severity
    return RANK[level]


def blocking(report: ScanReport, settings: Settings) -> list[Finding]:
    """The findings at or above ``fail_on`` (none when it is ``never``)."""
    if settings.fail_on == "never":
        return []
    threshold = RANK[settings.fail_on]
    return [f for f in report.findings if _rank(f, settings) >= threshold]


def enforce(report: ScanReport, settings: Settings) -> None:
    """Raise :class:`SbomPolicyError` listing every finding at or above ``fail_on``."""
    found = blocking(report, settings)
    if not found:
        return
    found.sort(key=lambda f: (-_rank(f, settings), f.package, f.id))
    lines = [f.line() for f in found[:MAX_LISTED]]
    if len(found) > MAX_LISTED:
        lines.append(f"... and {len(found) - MAX_LISTED} more (all in the error's JSON and `rtbuild scan --json`)")
    first = found[0]
    raise SbomPolicyError(
        f"rtbuild-sbom: {report.image} has {len(found)} known vulnerabilit{'y' if len(found) == 1 else 'ies'}"
        f" at or above {settings.fail_on!r}, e.g. {first.id} in {first.package} {first.installed}"
        f" (fixed in {first.fixed or 'no release yet'})",
        findings=found,
        step="sbom scan",
        log_tail=lines,
        hint="upgrade the packages listed to their fixed versions and rebuild; or accept a finding with"
        ' [plugins.sbom] ignore = ["ID"], or raise [plugins.sbom] fail_on (docs/plugins/sbom.md)',
    )


__all__ = ["MAX_LISTED", "SbomPolicyError", "ScanReport", "blocking", "enforce", "image_id", "scan_image"]
