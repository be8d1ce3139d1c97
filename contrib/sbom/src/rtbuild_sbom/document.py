"""The CycloneDX document (cyclonedx-python-lib) and its file, keyed by image ID.

Each component carries ``rtbuild:osv:*`` properties (the ecosystem, name and version OSV
records use), so a stored SBOM can be matched again without reading the image: a rebuild
that produced the same image ID reuses it.
"""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .inventory import OsRelease, Package

SPEC = "1.6"
_PROP = "rtbuild:osv:"


def make_bom_json(image: str, image_id: str | None, release: OsRelease, packages: Sequence[Package]) -> str:
    """The SBOM of one image as CycloneDX 1.6 JSON text."""
    import warnings

    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import DisjunctiveLicense
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from packageurl import PackageURL

    from . import __version__

    bom = Bom()
    root = Component(
        name=image,
        version=image_id or "",
        type=ComponentType.CONTAINER,
        bom_ref=f"image:{image_id or image}",
    )
    if release.id:
        root.properties.add(Property(name="rtbuild:os", value=f"{release.id} {release.version_id}".strip()))
    bom.metadata.component = root
    bom.metadata.properties.add(Property(name="rtbuild:sbom-version", value=__version__))
    components = []
    for index, package in enumerate(packages):
        component = Component(
            name=package.name,
            version=package.version,
            type=ComponentType.LIBRARY,
            purl=PackageURL.from_string(package.purl),
            # purl plus place: the same distribution can really be installed twice.
            bom_ref=f"{package.purl}#{index}",
        )
        for key, value in (
            ("ecosystem", package.ecosystem),
            ("name", package.osv_name),
            ("version", package.osv_version),
            ("location", package.location),
        ):
            component.properties.add(Property(name=_PROP + key, value=value))
        for licence in package.licenses:
            component.licenses.add(DisjunctiveLicense(name=licence))  # free text: not always SPDX
        components.append(component)
        bom.components.add(component)
    bom.register_dependency(root, components)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library warns about optional fields it would like
        text: str = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)
    return text


def sbom_path(directory: Path, image_id: str) -> Path:
    """``DIR/sha256-HEX.cdx.json``."""
    return directory / f"{image_id.replace(':', '-').replace('/', '_')}.cdx.json"


def write_atomic(path: Path, text: str) -> str:
    """Write ``text`` (a reader never sees half a file); return its sha256 as ``sha256:HEX``."""
    import rtbuild

    data = text.encode()
    try:
        rtbuild.atomic_write(path, data, mode=0o644)  # an SBOM is no secret (like metrics.jsonl)
    except OSError as exc:
        hint = "set [plugins.sbom] dir to a writable directory (docs/plugins/sbom.md)"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = f"free space on the filesystem of {path.parent}, or set [plugins.sbom] dir to another one"
        raise rtbuild.ConfigError(
            f"sbom: cannot write the SBOM {path}: {exc.strerror or exc}", step="sbom write", hint=hint
        ) from exc
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_packages(path: Path) -> tuple[list[Package], str] | None:
    """Packages and digest of a stored SBOM; ``None`` when absent or not one of ours."""
    try:
        data = path.read_bytes()
        doc = json.loads(data)
    except (OSError, ValueError):
        return None
    packages = []
    for comp in doc.get("components") or [] if isinstance(doc, dict) else []:
        props = {p.get("name"): p.get("value") for p in comp.get("properties") or [] if isinstance(p, dict)}
        eco, name, version = props.get(_PROP + "ecosystem"), props.get(_PROP + "name"), props.get(_PROP + "version")
        if not (eco and name and version and comp.get("purl") and comp.get("name") and comp.get("version")):
            return None
        packages.append(_package(comp, props, str(eco), str(name), str(version)))
    return packages, "sha256:" + hashlib.sha256(data).hexdigest()


def _package(comp: dict[str, Any], props: dict[Any, Any], eco: str, name: str, version: str) -> Package:
    licenses = tuple(
        str(lic["license"]["name"])
        for lic in comp.get("licenses") or []
        if isinstance(lic.get("license"), dict) and "name" in lic["license"]
    )
    return Package(
        ecosystem=eco,
        name=str(comp["name"]),
        version=str(comp["version"]),
        purl=str(comp["purl"]),
        source_name=name if name != comp["name"] else None,
        source_version=version if version != comp["version"] else None,
        location=str(props.get(_PROP + "location") or ""),
        licenses=licenses,
    )


__all__ = ["SPEC", "load_packages", "make_bom_json", "sbom_path", "write_atomic"]
