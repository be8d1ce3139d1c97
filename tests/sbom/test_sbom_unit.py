"""rtbuild-sbom without an engine: version order per ecosystem, OSV range evaluation,
severity mapping, package parsers, the stored SBOM and the policy error."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild_sbom.document import load_packages, make_bom_json, sbom_path, write_atomic
from rtbuild_sbom.inventory import (
    OsRelease,
    Package,
    inventory,
    parse_apk_installed,
    parse_dpkg_status,
    parse_os_release,
    parse_python_metadata,
    wanted,
)
from rtbuild_sbom.osv import OsvDatabase, OsvDatabaseError, affects
from rtbuild_sbom.scan import SbomPolicyError, ScanReport, enforce
from rtbuild_sbom.settings import Settings
from rtbuild_sbom.severity import record_severity
from rtbuild_sbom.versions import sort_key

BOOKWORM = OsRelease("debian", "12")


def _lt(ecosystem: str, a: str, b: str) -> bool:
    ka, kb = sort_key(ecosystem, a), sort_key(ecosystem, b)
    assert ka is not None and kb is not None
    return bool(ka < kb)


# --- version order ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("9.9", "1:0.1"),  # an epoch outranks everything after it
        ("1:2.0", "2:1.0"),
        ("1.0~rc1", "1.0"),  # a tilde sorts before the empty string
        ("1.0~~", "1.0~"),
        ("1.0", "1.0+deb12u1"),
        ("3.0.11-1~deb12u1", "3.0.11-1~deb12u2"),
        ("3.0.11-1~deb12u2", "3.0.11-1"),  # a backport/stable update is below the unstable upload
        ("5.2.15-2", "5.2.15-2+b13"),  # binNMU
        ("1.2-9", "1.2-10"),  # revisions compare numerically, not as strings
        ("1.0a", "1.0b"),
    ],
)
def test_debian_order(lower: str, higher: str) -> None:
    assert _lt("Debian:12", lower, higher)
    assert not _lt("Debian:12", higher, lower)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.dev1", "1.0a1"),
        ("1.0a1", "1.0b2"),
        ("1.0b2", "1.0rc1"),
        ("1.0rc1", "1.0"),
        ("1.0", "1.0.post1"),
        ("1.0.post1", "1.0.1"),
        ("1.9", "1.10"),
        ("1!0.1", "1!0.2"),
        ("2.0", "1!0.1"),  # PEP 440 epochs
    ],
)
def test_pep440_order(lower: str, higher: str) -> None:
    assert _lt("PyPI", lower, higher)
    assert not _lt("PyPI", higher, lower)


def test_pep440_equal_spellings_and_unparseable() -> None:
    assert sort_key("PyPI", "1.0") == sort_key("PyPI", "1.0.0")
    assert sort_key("PyPI", "not a version!") is None
    assert sort_key("Unknown", "1.0") is None


@pytest.mark.parametrize(
    ("lower", "higher"),
    [("1.36.1-r15", "1.36.1-r16"), ("1.2_rc1", "1.2"), ("1.2", "1.2_p1"), ("1.2", "1.2a"), ("1.9", "1.10")],
)
def test_alpine_order(lower: str, higher: str) -> None:
    assert _lt("Alpine:v3.19", lower, higher)


# --- OSV ranges ------------------------------------------------------------------------------


def _entry(events: list[dict[str, str]], versions: list[str] | None = None, eco: str = "Debian:12") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "package": {"ecosystem": eco, "name": "p"},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    }
    if versions is not None:
        entry["versions"] = versions
    return entry


@pytest.mark.parametrize(
    ("version", "hit", "fixed"),
    [
        ("3.0.11-1~deb12u1", True, "3.0.11-1~deb12u2"),
        ("3.0.11-1~deb12u2", False, None),  # the fixed version itself is not affected
        ("3.0.11-1", False, None),
        ("1:0.1", False, None),  # epoch 1 is above every epoch-0 fix
        ("0.9", True, "3.0.11-1~deb12u2"),
    ],
)
def test_introduced_zero_fixed(version: str, hit: bool, fixed: str | None) -> None:
    entry = _entry([{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}])
    assert affects(entry, "Debian:12", version) == (hit, fixed)


def test_several_windows_and_last_affected() -> None:
    events = [{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"last_affected": "2.3"}]
    entry = _entry(events, eco="PyPI")
    assert affects(entry, "PyPI", "0.9") == (False, None)
    assert affects(entry, "PyPI", "1.1") == (True, "1.2")
    assert affects(entry, "PyPI", "1.5") == (False, None)
    assert affects(entry, "PyPI", "2.3") == (True, None)  # last_affected is still affected, no fix known
    assert affects(entry, "PyPI", "2.3.post1") == (False, None)
    # Events need not be listed in order.
    shuffled = _entry(list(reversed(events)), eco="PyPI")
    assert affects(shuffled, "PyPI", "1.1") == (True, "1.2")


def test_versions_list_and_unorderable_ranges() -> None:
    entry = _entry([{"introduced": "0"}, {"fixed": "not~a~version!"}], versions=["2.0"], eco="PyPI")
    # The range cannot be ordered, so only the explicit list counts.
    assert affects(entry, "PyPI", "2.0") == (True, None)
    assert affects(entry, "PyPI", "1.0") == (False, None)
    git = {"package": {}, "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}
    assert affects(git, "PyPI", "1.0") == (False, None)


def _record(ident: str, eco: str, name: str, events: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "affected": [
            {"package": {"ecosystem": eco, "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}
        ],
        **extra,
    }


def _deb(name: str, version: str, source: str | None = None, src_version: str | None = None) -> Package:
    return Package("Debian:12", name, version, f"pkg:deb/debian/{name}@{version}", source, src_version)


def test_database_matches_source_packages_releases_and_pypi_names(tmp_path: Path) -> None:
    records = [
        _record("DSA-1", "Debian:12", "glibc", [{"introduced": "0"}, {"fixed": "2.36-9+deb12u5"}]),
        _record("DSA-2", "Debian:11", "glibc", [{"introduced": "0"}, {"fixed": "9:0"}]),  # another release
        _record("PYSEC-1", "PyPI", "Foo_Bar", [{"introduced": "0"}, {"fixed": "1.1"}]),
        _record("OLD", "PyPI", "foo-bar", [{"introduced": "0"}], withdrawn="2024-01-01T00:00:00Z"),
    ]
    db = OsvDatabase(records)
    packages = [
        _deb("libc6", "2.36-9+deb12u4", "glibc"),
        Package("PyPI", "foo.bar", "1.0", "pkg:pypi/foo-bar@1.0"),
    ]
    found = {(f.id, f.package, f.osv_name, f.installed, f.fixed) for f in db.match(packages)}
    assert found == {
        ("DSA-1", "libc6", "glibc", "2.36-9+deb12u4", "2.36-9+deb12u5"),
        ("PYSEC-1", "foo.bar", "foo.bar", "1.0", "1.1"),
    }


def test_database_from_directory_and_zip(tmp_path: Path) -> None:
    record = _record("X-1", "PyPI", "foo", [{"introduced": "0"}, {"fixed": "2"}])
    (tmp_path / "db" / "PyPI").mkdir(parents=True)
    (tmp_path / "db" / "PyPI" / "X-1.json").write_text(json.dumps(record))
    (tmp_path / "db" / "list.json").write_text(json.dumps([record | {"id": "X-2"}]))
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        archive.writestr("X-1.json", json.dumps(record))
    pkg = [Package("PyPI", "foo", "1", "pkg:pypi/foo@1")]
    assert [f.id for f in OsvDatabase.load(tmp_path / "db").match(pkg)] == ["X-1", "X-2"]
    assert [f.id for f in OsvDatabase.load(tmp_path / "all.zip").match(pkg)] == ["X-1"]
    with pytest.raises(OsvDatabaseError, match="does not exist"):
        OsvDatabase.load(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.json").write_text("{nope")
    with pytest.raises(OsvDatabaseError, match="not valid JSON"):
        OsvDatabase.load(tmp_path / "bad")


def test_index_reads_only_the_records_of_installed_packages_and_follows_changes(tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    (db / "A.json").write_text(json.dumps(_record("A", "PyPI", "foo", [{"introduced": "0"}, {"fixed": "2"}])))
    (db / "B.json").write_text(json.dumps(_record("B", "PyPI", "other", [{"introduced": "0"}])))
    pkgs = [Package("PyPI", "Foo", "1", "pkg:pypi/foo@1")]
    index_dir = tmp_path / "index"
    first = OsvDatabase.load(db, index_dir=index_dir, packages=pkgs)
    assert first.count == 2 and [f.id for f in first.match(pkgs)] == ["A"]
    [index_file] = index_dir.iterdir()
    assert json.loads(index_file.read_text())["members"] == {"PyPI/foo": ["A.json"], "PyPI/other": ["B.json"]}
    # With the index current, B.json is never parsed: damage it without changing its stat.
    stat = (db / "B.json").stat()
    (db / "B.json").write_text("{" + " " * (stat.st_size - 1))
    os.utime(db / "B.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert [f.id for f in OsvDatabase.load(db, index_dir=index_dir, packages=pkgs).match(pkgs)] == ["A"]
    # A new record changes the signature: the index is rebuilt and the record found.
    (db / "B.json").write_text(json.dumps(_record("B", "PyPI", "other", [{"introduced": "0"}])))
    (db / "C.json").write_text(json.dumps(_record("C", "PyPI", "FOO", [{"introduced": "0"}])))
    again = OsvDatabase.load(db, index_dir=index_dir, packages=pkgs)
    assert again.count == 3 and [f.id for f in again.match(pkgs)] == ["A", "C"]


# --- severity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "entry", "level"),
    [
        ({"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}, {}, "critical"),
        ({"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"}]}, {}, "medium"),
        ({"severity": [{"type": "CVSS_V3", "score": "garbage"}]}, {}, "unknown"),
        ({"database_specific": {"severity": "MODERATE"}}, {}, "medium"),
        ({}, {"ecosystem_specific": {"severity": "high"}}, "high"),
        (
            {"severity": [{"type": "Ubuntu", "score": "low"}], "database_specific": {"severity": "CRITICAL"}},
            {},
            "critical",
        ),
        ({}, {}, "unknown"),
    ],
)
def test_severity_mapping(record: dict[str, Any], entry: dict[str, Any], level: str) -> None:
    assert record_severity(record, entry)[0] == level


def test_cvss_v4_score() -> None:
    vector = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    assert record_severity({"severity": [{"type": "CVSS_V4", "score": vector}]}) == ("critical", 9.3)


# --- parsers ---------------------------------------------------------------------------------

DPKG = """\
Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: bash
Status: install ok installed
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b13

Package: gone
Status: deinstall ok config-files
Version: 1.0
"""


def test_dpkg_status_keeps_installed_packages_with_their_source() -> None:
    libc, bash = parse_dpkg_status(DPKG, BOOKWORM)
    assert (libc.name, libc.osv_name, libc.osv_version) == ("libc6", "glibc", "2.36-9+deb12u4")
    assert libc.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    assert (bash.osv_name, bash.version, bash.osv_version) == ("bash", "5.2.15-2+b13", "5.2.15-2")
    assert bash.ecosystem == "Debian:12" and bash.source_name is None


def test_dpkg_ecosystem_follows_the_distribution() -> None:
    def eco(os_release: str) -> str:
        return parse_dpkg_status(DPKG, parse_os_release(os_release))[0].ecosystem

    assert eco('ID=debian\nVERSION_ID="12"\n') == "Debian:12"
    assert eco('ID=ubuntu\nVERSION_ID="22.04"\n') == "Ubuntu:22.04"
    assert eco("ID=linuxmint\nVERSION_ID=21\nID_LIKE=ubuntu\n") == "linuxmint"  # never Debian's fixes
    assert eco("") == "Debian"
    ubuntu = [Package("Ubuntu:22.04", "libc6", "2.35-0ubuntu3.1", "pkg:deb/ubuntu/libc6", "glibc")]
    records = [
        _record("USN-1", "Ubuntu:22.04:LTS", "glibc", [{"introduced": "0"}, {"fixed": "2.35-0ubuntu3.4"}]),
        _record("USN-2", "Ubuntu:Pro:22.04:LTS", "glibc", [{"introduced": "0"}, {"fixed": "2.35-0ubuntu3.4"}]),
        _record("USN-3", "Ubuntu:20.04:LTS", "glibc", [{"introduced": "0"}, {"fixed": "2.35-0ubuntu3.4"}]),
    ]
    assert [(f.id, f.fixed) for f in OsvDatabase(records).match(ubuntu)] == [("USN-1", "2.35-0ubuntu3.4")]


def test_apk_database() -> None:
    text = (
        "C:Q1abc=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\n\n"
        "P:libcrypto3\nV:3.1.4-r5\no:openssl\n"
    )
    release = parse_os_release('ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine"\n')
    box, crypto = parse_apk_installed(text, release)
    assert box.ecosystem == "Alpine:v3.19" and box.purl.startswith("pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64")
    assert box.source_name is None and crypto.osv_name == "openssl"


def test_python_metadata_and_file_selection() -> None:
    meta = "Name: Foo_Bar\nVersion: 1.0\n\nbody"
    pkg = parse_python_metadata("/x/site-packages/Foo_Bar-1.0.dist-info/METADATA", meta)
    assert pkg is not None and pkg.purl == "pkg:pypi/foo-bar@1.0" and pkg.ecosystem == "PyPI"
    assert wanted("usr/local/lib/python3.11/site-packages/foo-1.0.dist-info/METADATA")
    assert wanted("usr/lib/python3/dist-packages/foo-1.0.egg-info/PKG-INFO")
    assert wanted("opt/venv/lib/python3.12/site-packages/a-2.dist-info/METADATA")
    assert not wanted("usr/share/doc/foo.dist-info/METADATA")
    assert not wanted("usr/lib/python3/dist-packages/foo-1.0.dist-info/RECORD")
    assert wanted("var/lib/dpkg/status") and wanted("lib/apk/db/installed") and wanted("etc/os-release")


def test_inventory_and_stored_sbom_round_trip(tmp_path: Path) -> None:
    files = {
        "var/lib/dpkg/status": DPKG,
        "etc/os-release": 'ID=debian\nVERSION_ID="12"\n',
        "usr/lib/python3/dist-packages/foo-1.0.dist-info/METADATA": "Name: foo\nVersion: 1.0\nLicense: MIT\n",
    }
    release, packages = inventory(files)
    assert release == BOOKWORM and [p.name for p in packages] == ["libc6", "bash", "foo"]
    text = make_bom_json("app:1", "sha256:abc", release, packages)
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6" and doc["metadata"]["component"]["type"] == "container"
    assert {c["purl"] for c in doc["components"]} == {p.purl for p in packages}
    path = sbom_path(tmp_path, "sha256:abc")
    digest = write_atomic(path, text)
    assert path.name == "sha256-abc.cdx.json" and digest.startswith("sha256:")
    stored = load_packages(path)
    assert stored is not None and stored[1] == digest
    assert sorted(stored[0], key=str) == sorted(packages, key=str)
    path.write_text(json.dumps({"components": [{"name": "x", "version": "1", "purl": "pkg:generic/x@1"}]}))
    assert load_packages(path) is None  # not one of ours: regenerate rather than guess
    (tmp_path / "file").write_text("")
    with pytest.raises(rtbuild.ConfigError, match="cannot write the SBOM") as info:
        write_atomic(sbom_path(tmp_path / "file", "sha256:abc"), text)  # a file where the directory should be
    assert info.value.step == "sbom write" and info.value.hint and "[plugins.sbom] dir" in info.value.hint


# --- settings and policy ---------------------------------------------------------------------


def test_settings_defaults_and_errors(tmp_path: Path) -> None:
    settings = Settings.from_table({})
    assert not settings.enabled and settings.fail_on == "high" and settings.osv_db is None
    assert settings.dir.parts[-2:] == ("rtbuild", "sbom")
    for table, words in [
        ({"bogus": 1}, "unknown key(s) bogus"),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"fail_on": "severe"}, "fail_on must be one of"),
        ({"ignore": "CVE-1"}, "ignore must be a list"),
    ]:
        with pytest.raises(rtbuild.ConfigError, match=r"plugins\.sbom") as info:
            Settings.from_table(table)
        assert words in info.value.message


def _finding_report(severity_extra: dict[str, Any]) -> ScanReport:
    record = _record("CVE-2099-1", "Debian:12", "glibc", [{"introduced": "0"}, {"fixed": "2.36-9+deb12u5"}])
    record.update(severity_extra)
    packages = [_deb("libc6", "2.36-9+deb12u4", "glibc")]
    return ScanReport("app:1", "sha256:abc", None, None, packages, OsvDatabase([record]).match(packages))


def test_policy_fails_at_or_above_the_threshold_naming_each_finding() -> None:
    report = _finding_report({"database_specific": {"severity": "HIGH"}})
    with pytest.raises(SbomPolicyError) as info:
        enforce(report, Settings(fail_on="high"))
    err = info.value
    assert isinstance(err, rtbuild.PolicyError) and isinstance(err, rtbuild.AgentRuntimeBuildError)
    assert err.exit_code == rtbuild.PolicyError.exit_code == 2 and err.step == "sbom scan"
    assert "rtbuild-sbom" in err.message and "CVE-2099-1" in err.message
    assert err.log_tail == ["CVE-2099-1 [high] libc6 (source glibc) 2.36-9+deb12u4 -> fixed in 2.36-9+deb12u5"]
    assert err.hint and "ignore" in err.hint
    assert err.to_dict()["findings"][0]["fixed"] == "2.36-9+deb12u5"
    enforce(report, Settings(fail_on="critical"))
    enforce(report, Settings(fail_on="never"))


def test_unknown_severity_is_ranked_as_configured() -> None:
    report = _finding_report({})
    enforce(report, Settings(fail_on="high"))  # unknown counts as medium by default
    with pytest.raises(SbomPolicyError):
        enforce(report, Settings(fail_on="high", unknown_severity="critical"))


def test_a_container_the_engine_keeps_is_named_and_the_scan_still_answers(tmp_path: Path) -> None:
    """`rm` of the scan's container fails: the files read are returned, and a warning names
    the container and how to remove it (no traceback, nothing silently left)."""
    import io
    import tarfile

    from rtbuild._framework.progress import use_reporter
    from rtbuild_sbom.image_fs import read_files

    layer = tmp_path / "fs.tar"
    with tarfile.open(layer, "w") as tar:
        data = b"ID=debian\nVERSION_ID=12\n"
        info = tarfile.TarInfo("etc/os-release")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    cli = tmp_path / "engine"
    cli.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  create) echo 0123456789abcdef0123 ;;\n"
        f"  export) cat {layer} ;;\n"
        '  rm) echo "Error: container is in use" >&2; exit 1 ;;\n'
        "esac\n"
    )
    cli.chmod(0o755)
    events: list[tuple[str, dict[str, Any]]] = []

    class Recorder(rtbuild.Reporter):
        def event(self, kind: str, **fields: Any) -> None:
            events.append((kind, fields))

    with use_reporter(Recorder()):
        files = read_files("img:1", lambda path: path == "etc/os-release", [str(cli)], dict(os.environ))
    assert files == {"etc/os-release": "ID=debian\nVERSION_ID=12\n"}
    [(kind, fields)] = events
    assert kind == "warning" and "0123456789ab" in fields["message"] and "container is in use" in fields["message"]
    assert f"{cli} rm -f -v 0123456789ab" in fields["message"]


def test_database_holding_no_records_is_refused_not_a_passing_scan(tmp_path: Path) -> None:
    # OSV ships <Ecosystem>/all.zip: a directory of those, not unpacked, held 0 records and
    # every scan against it passed ("0 finding(s) in 0 OSV records"), exit 0.
    (tmp_path / "mirror" / "Debian").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "mirror" / "Debian" / "all.zip", "w") as archive:
        archive.writestr("DSA-1.json", json.dumps(_record("DSA-1", "Debian:12", "bash", [{"introduced": "0"}])))
    (tmp_path / "empty").mkdir()
    pkgs = [Package("Debian:12", "bash", "5", "pkg:deb/debian/bash@5")]
    for database in (tmp_path / "mirror", tmp_path / "empty"):
        with pytest.raises(OsvDatabaseError, match="holds no OSV records") as caught:
            OsvDatabase.load(database)
        with pytest.raises(OsvDatabaseError, match="holds no OSV records"):
            OsvDatabase.load(database, index_dir=tmp_path / "index", packages=pkgs)
    with pytest.raises(OsvDatabaseError) as caught:
        OsvDatabase.load(tmp_path / "mirror", index_dir=tmp_path / "index", packages=pkgs)
    assert "Debian/all.zip" in str(caught.value.hint)
    # One of the zips itself is a database.
    assert OsvDatabase.load(tmp_path / "mirror" / "Debian" / "all.zip").count == 1


def test_export_sending_after_the_archive_end_is_read_to_its_end(tmp_path: Path) -> None:
    """tarfile stops at the end-of-archive block; the scan closed the pipe there, and an
    engine still sending (its last chunk) died of SIGPIPE: 'export ... failed (exit -13)',
    every fresh scan of some images on Docker 20.10 (a busybox image with one COPY)."""
    import io
    import tarfile

    from rtbuild_sbom.image_fs import read_files

    layer = tmp_path / "fs.tar"
    with tarfile.open(layer, "w") as tar:
        data = b"ID=alpine\n"
        info = tarfile.TarInfo("etc/os-release")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    cli = tmp_path / "engine"
    cli.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  create) echo 0123456789abcdef0123 ;;\n"
        # The archive, then (once the reader is past its end) the engine's last bytes.
        f"  export) cat {layer}; sleep 1; head -c 65536 /dev/zero ;;\n"
        "esac\n"
    )
    cli.chmod(0o755)
    files = read_files("img:1", lambda path: path == "etc/os-release", [str(cli)], dict(os.environ))
    assert files == {"etc/os-release": "ID=alpine\n"}


def test_scan_of_a_malformed_reference_is_a_usage_error() -> None:
    """It was 'not in the local engine', exit 1, as for an image that is simply absent."""
    import subprocess
    import sys

    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # never asked
    for bad in ("Bad Ref", "Upper:1", "app:"):
        out = subprocess.run(
            [sys.executable, "-m", "rtbuild", "scan", bad, "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 2, (bad, out.stderr)
        assert json.loads(out.stdout)["error"] == "InvalidReferenceError"
