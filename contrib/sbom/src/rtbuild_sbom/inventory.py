"""What is installed in an image: Debian packages (dpkg status), Alpine packages (apk
database) and Python distributions (``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``).

Parsers take file contents, not an image, so they are tested without an engine.
"""

from __future__ import annotations

import email.parser
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from packageurl import PackageURL

from .versions import ALPINE, DEBIAN, PYPI, UBUNTU


@dataclass(frozen=True)
class Package:
    """One installed package and how OSV names it."""

    ecosystem: str  # OSV ecosystem, e.g. "Debian:12", "Alpine:v3.19", "PyPI"
    name: str  # the installed (binary) name
    version: str
    purl: str
    #: The name and version OSV records use, when they differ (Debian: the source package).
    source_name: str | None = None
    source_version: str | None = None
    location: str = ""  # where in the image it was found
    licenses: tuple[str, ...] = field(default=())

    @property
    def osv_name(self) -> str:
        return self.source_name or self.name

    @property
    def osv_version(self) -> str:
        return self.source_version or self.version


@dataclass(frozen=True)
class OsRelease:
    id: str = ""
    version_id: str = ""

    def ecosystem(self, fam: str) -> str:
        """The OSV ecosystem with its release: ``Debian:12``, ``Ubuntu:22.04``, ``Alpine:v3.19``.

        Bare (``Debian``) when the release is unknown. A dpkg database in another distribution
        (ID neither debian nor ubuntu) gets that ID, which no Debian record names: matching a
        derivative against Debian's fixed versions would report wrong fixes.
        """
        if fam == DEBIAN and self.id == "ubuntu" and self.version_id:
            return f"{UBUNTU}:{self.version_id}"
        if fam == DEBIAN and self.id not in ("", "debian"):
            return self.id
        if fam == DEBIAN and self.version_id:
            return f"{DEBIAN}:{self.version_id.split('.')[0]}"
        if fam == ALPINE and self.version_id:
            return f"{ALPINE}:v{'.'.join(self.version_id.split('.')[:2])}"
        return fam

    def distro(self) -> str | None:
        """The purl ``distro`` qualifier, e.g. ``debian-12``."""
        return f"{self.id}-{self.version_id}" if self.id and self.version_id else None


def parse_os_release(text: str) -> OsRelease:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'")
    return OsRelease(values.get("ID", ""), values.get("VERSION_ID", ""))


def _qualifiers(**items: str | None) -> dict[str, str]:
    return {key: value for key, value in items.items() if value}


def parse_dpkg_status(text: str, release: OsRelease) -> list[Package]:
    """Installed packages of a dpkg status file (``Status: install ok installed`` only)."""
    from debian.deb822 import Deb822

    namespace = release.id or "debian"
    ecosystem = release.ecosystem(DEBIAN)
    packages = []
    for para in Deb822.iter_paragraphs(text.splitlines(keepends=True)):
        status = para.get("Status", "").split()
        if len(status) < 3 or status[2] != "installed":
            continue  # config-files, half-installed: nothing of the package is on disk
        name, version = para.get("Package"), para.get("Version")
        if not name or not version:
            continue
        # "Source: glibc (2.36-9+deb12u4)": OSV's Debian records name the source package.
        source = para.get("Source", "").strip()
        source_name, source_version = None, None
        if source:
            match = re.match(r"^(\S+)(?:\s+\((\S+)\))?$", source)
            if match:
                source_name, source_version = match.group(1), match.group(2)
        source_name = None if source_name == name else source_name
        source_version = None if source_version == version else source_version
        quals = _qualifiers(arch=para.get("Architecture"), distro=release.distro(), upstream=source_name)
        purl = PackageURL(type="deb", namespace=namespace, name=name, version=version, qualifiers=quals)
        packages.append(
            Package(ecosystem, name, version, purl.to_string(), source_name, source_version, "/var/lib/dpkg/status")
        )
    return packages


def parse_apk_installed(text: str, release: OsRelease) -> list[Package]:
    """Packages of Alpine's ``/lib/apk/db/installed`` (blank-line separated ``K:value`` records)."""
    ecosystem = release.ecosystem(ALPINE)
    packages = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) > 2 and line[1] == ":":
                fields.setdefault(line[0], line[2:])
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        origin = fields.get("o")  # the origin (source) package: what Alpine's secdb names
        quals = _qualifiers(arch=fields.get("A"), distro=release.distro())
        purl = PackageURL(type="apk", namespace=release.id or "alpine", name=name, version=version, qualifiers=quals)
        licenses = (fields["L"],) if fields.get("L") else ()
        packages.append(
            Package(
                ecosystem,
                name,
                version,
                purl.to_string(),
                origin if origin and origin != name else None,
                None,
                "/lib/apk/db/installed",
                licenses,
            )
        )
    return packages


def parse_python_metadata(path: str, text: str) -> Package | None:
    """One distribution from its ``METADATA``/``PKG-INFO`` (RFC 822 headers)."""
    from packaging.utils import canonicalize_name

    headers = email.parser.Parser().parsestr(text, headersonly=True)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    name, version = str(name).strip(), str(version).strip()
    purl = PackageURL(type="pypi", name=canonicalize_name(name), version=version)
    licence = headers.get("License-Expression") or headers.get("License")
    licenses = (str(licence).strip(),) if licence and "\n" not in str(licence).strip() else ()
    return Package(PYPI, name, version, purl.to_string(), location=path, licenses=licenses)


#: Python metadata files: inside a site-packages or dist-packages directory, anywhere.
_PY_META = re.compile(r"(?:^|/)(?:site|dist)-packages/[^/]+\.(?:dist-info/METADATA|egg-info/PKG-INFO)$")
DPKG_STATUS = "var/lib/dpkg/status"
APK_INSTALLED = "lib/apk/db/installed"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


def wanted(path: str) -> bool:
    """Whether the image reader should keep this file (path without a leading ``/``)."""
    return path in (DPKG_STATUS, APK_INSTALLED, *OS_RELEASE) or bool(_PY_META.search(path))


def inventory(files: Mapping[str, str]) -> tuple[OsRelease, list[Package]]:
    """Every package found in ``files`` (path -> text, as :func:`wanted` selected them)."""
    release = parse_os_release(files.get(OS_RELEASE[0]) or files.get(OS_RELEASE[1]) or "")
    packages: list[Package] = []
    if DPKG_STATUS in files:
        packages += parse_dpkg_status(files[DPKG_STATUS], release)
    if APK_INSTALLED in files:
        packages += parse_apk_installed(files[APK_INSTALLED], release)
    for path in sorted(files):
        if _PY_META.search(path):
            package = parse_python_metadata("/" + path, files[path])
            if package is not None:
                packages.append(package)
    return release, _unique(packages)


def _unique(packages: Iterable[Package]) -> list[Package]:
    # The same distribution in two places (e.g. a venv and the system) stays twice: both
    # are really there. Only exact duplicates (same purl, same place) are dropped.
    seen: set[tuple[str, str]] = set()
    out = []
    for package in packages:
        key = (package.purl, package.location)
        if key not in seen:
            seen.add(key)
            out.append(package)
    return out


__all__ = [
    "APK_INSTALLED",
    "DPKG_STATUS",
    "OS_RELEASE",
    "OsRelease",
    "Package",
    "inventory",
    "parse_apk_installed",
    "parse_dpkg_status",
    "parse_os_release",
    "parse_python_metadata",
    "wanted",
]
