"""rtbuild-sbom on the real Docker engine, with one image for the whole module: built once
from the local debian:bookworm base with a hand-written Python distribution, then
listed in its SBOM, failed by a planted OSV record through ``rtbuild build``, and
checked by ``rtbuild scan``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild import BuildRequest

pytestmark = pytest.mark.engine

RTBUILD = [sys.executable, "-m", "rtbuild"]
PROBE = "rtbuild-sbom-probe"
PROBE_META = "usr/local/lib/python3.11/site-packages/rtbuild_sbom_probe-1.2.3.dist-info/METADATA"
#: Copied in one layer and deleted in the next: the SBOM must not list it.
GONE_DIR = "usr/local/lib/python3.11/site-packages/rtbuild_sbom_gone-0.1.dist-info"


@dataclass
class Built:
    image: str
    context: Path
    sbom_dir: Path
    result: rtbuild.BuildResult
    doc: dict[str, Any]

    def component(self, name: str) -> dict[str, Any]:
        [found] = [c for c in self.doc["components"] if c["name"] == name]
        return found


def _config_file(path: Path, **table: object) -> Path:
    lines = ["[plugins.sbom]"] + [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def built(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("sbom")
    context = root / "ctx"
    (context / os.path.dirname(PROBE_META)).mkdir(parents=True)
    (context / PROBE_META).write_text(f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: 1.2.3\nLicense: MIT\n")
    (context / GONE_DIR).mkdir()
    (context / GONE_DIR / "METADATA").write_text("Metadata-Version: 2.1\nName: rtbuild-sbom-gone\nVersion: 0.1\n")
    # A unique marker so this module's image is never an earlier session's.
    (context / "Dockerfile").write_text(
        "FROM debian:bookworm\nCOPY usr /usr\n"
        f"RUN rm -r /{GONE_DIR} && echo {uuid.uuid4().hex} > /etc/rtbuild-sbom-test\n"
    )
    image = f"rtbuild-test/sbom-{uuid.uuid4().hex[:10]}:1"
    sbom_dir = root / "sbom"
    config_path = _config_file(root / "rtbuild.toml", enabled=True, dir=str(sbom_dir))
    config = rtbuild.load_config(str(config_path))
    result = rtbuild.run_build(BuildRequest(str(context), tags=[image]), config=config)
    doc = json.loads(Path(result.details["sbom"]["sbom"]).read_text())
    yield Built(image, context, sbom_dir, result, doc)
    subprocess.run([docker_engine, "rmi", "-f", image], capture_output=True)


def _rtbuild(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RTBUILD, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_sbom_lists_the_debian_packages_and_the_python_distribution(built: Built) -> None:
    details = built.result.details["sbom"]
    assert details["reused"] is False and details["findings"] == [] and details["osv_records"] is None
    assert details["sbom_digest"].startswith("sha256:") and Path(details["sbom"]).parent == built.sbom_dir
    assert built.doc["bomFormat"] == "CycloneDX" and built.doc["metadata"]["component"]["name"] == built.image
    names = {c["name"] for c in built.doc["components"]}
    # debootstrap's minbase: the essential set, every one from the dpkg status.
    assert {"dpkg", "apt", "bash", "libc6", "coreutils", "base-files"} <= names
    assert len([c for c in built.doc["components"] if c["purl"].startswith("pkg:deb/debian/")]) > 50
    libc6 = built.component("libc6")
    assert "distro=debian-12" in libc6["purl"] and "upstream=glibc" in libc6["purl"]
    probe = built.component(PROBE)
    assert probe["purl"] == f"pkg:pypi/{PROBE}@1.2.3"
    assert {"name": "rtbuild:osv:location", "value": "/" + PROBE_META} in probe["properties"]
    assert "rtbuild-sbom-gone" not in names  # deleted by a later layer: the merged filesystem is read


def _osv_db(tmp_path: Path, built: Built) -> tuple[Path, str, str]:
    """Two records for packages really in the image: glibc (libc6) high, the probe low."""
    version = built.component("libc6")["version"]
    fixed = version + "+rtbuildfix1"  # Debian orders any suffix after the installed version
    db = tmp_path / "osv"
    (db / "Debian").mkdir(parents=True)
    (db / "PyPI").mkdir()
    debian = {
        "id": "DEBIAN-CVE-2099-0001",
        "summary": "planted by the rtbuild-sbom tests",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "glibc"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
        # Base score 8.1: "high".
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"}],
    }
    pypi = {
        "id": "PYSEC-2099-7",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "RTBuild_Sbom_Probe"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.2.4"}]}],
            }
        ],
        "database_specific": {"severity": "LOW"},
    }
    (db / "Debian" / "DEBIAN-CVE-2099-0001.json").write_text(json.dumps(debian))
    (db / "PyPI" / "PYSEC-2099-7.json").write_text(json.dumps(pypi))
    return db, version, fixed


def test_planted_osv_record_fails_the_build_through_the_cli(built: Built, tmp_path: Path) -> None:
    db, version, fixed = _osv_db(tmp_path, built)
    config = _config_file(tmp_path / "rtbuild.toml", enabled=True, dir=str(built.sbom_dir), osv_db=str(db))
    proc = _rtbuild("--config", str(config), "build", str(built.context), "-t", built.image, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr  # a PolicyError's exit code
    assert proc.stdout == ""
    assert "rtbuild-sbom" in proc.stderr and "step: sbom scan" in proc.stderr
    # Every binary package built from the glibc source is named: libc6 and libc-bin.
    for binary in ("libc6", "libc-bin"):
        assert f"DEBIAN-CVE-2099-0001 [high] {binary} (source glibc) {version} -> fixed in {fixed}" in proc.stderr
    assert "PYSEC-2099-7" not in proc.stderr  # low is under the default fail_on = "high"

    # The same build with the policy lowered to "low" names the Python finding too; JSON errors carry all.
    low = _config_file(tmp_path / "low.toml", enabled=True, dir=str(built.sbom_dir), osv_db=str(db), fail_on="low")
    proc = _rtbuild("--config", str(low), "build", str(built.context), "-t", built.image, "--json", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "SbomPolicyError" and error["step"] == "sbom scan" and error["exit_code"] == 2
    found = {(f["id"], f["package"], f["installed"], f["fixed"]) for f in error["findings"]}
    assert found == {
        ("DEBIAN-CVE-2099-0001", "libc-bin", version, fixed),
        ("DEBIAN-CVE-2099-0001", "libc6", version, fixed),
        ("PYSEC-2099-7", PROBE, "1.2.3", "1.2.4"),
    }

    # Ignoring both ids lets the build pass.
    ok = _config_file(
        tmp_path / "ok.toml",
        enabled=True,
        dir=str(built.sbom_dir),
        osv_db=str(db),
        fail_on="low",
        ignore=["DEBIAN-CVE-2099-0001", "PYSEC-2099-7"],
    )
    proc = _rtbuild("--config", str(ok), "build", str(built.context), "-t", built.image, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sbom = json.loads(proc.stdout)["details"]["sbom"]
    # The unchanged image's stored SBOM was matched again; the image was not read.
    assert sbom["reused"] is True and sbom["sbom_digest"] == built.result.details["sbom"]["sbom_digest"]
    assert sbom["findings"] == [] and sbom["osv_records"] == 2


def test_scan_command_reads_a_local_image(built: Built, tmp_path: Path) -> None:
    db, version, fixed = _osv_db(tmp_path, built)
    fresh = tmp_path / "fresh-sbom"  # an empty store: the image itself is read again
    config = _config_file(tmp_path / "rtbuild.toml", dir=str(fresh))
    proc = _rtbuild("--config", str(config), "scan", built.image, "--osv-db", str(db), "--json", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    report = json.loads(proc.stdout)
    assert report["reused"] is False and Path(report["sbom"]).parent == fresh
    assert report["components"] == len(built.doc["components"])
    assert report["policy"] == {"fail_on": "high", "unknown_severity": "medium", "blocking": 2, "passed": False}
    ids = [(f["id"], f["package"]) for f in report["findings"]]
    assert ids == [("DEBIAN-CVE-2099-0001", "libc-bin"), ("DEBIAN-CVE-2099-0001", "libc6"), ("PYSEC-2099-7", PROBE)]
    assert "DEBIAN-CVE-2099-0001" in proc.stderr

    # Human output: the findings table on stdout, exit 0 when nothing reaches fail_on.
    args = ["--config", str(config), "scan", built.image, "--osv-db", str(db)]
    proc = _rtbuild(*args, "--fail-on", "critical", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["ID", "SEVERITY", "PACKAGE", "INSTALLED", "FIXED"]
    assert rows[0].split() == ["DEBIAN-CVE-2099-0001", "high", "libc-bin", "(glibc)", version, fixed]
    assert rows[2].split() == ["PYSEC-2099-7", "low", PROBE, "1.2.3", "1.2.4"]
    assert "stored SBOM reused" in proc.stderr

    missing = _rtbuild("--config", str(config), "scan", "rtbuild-test/sbom-no-such-image:0", cwd=tmp_path)
    assert missing.returncode == 1 and "not in the local engine" in missing.stderr


def _scan_containers(docker_engine: str) -> set[str]:
    listed = subprocess.run(
        [docker_engine, "ps", "-aq", "--no-trunc", "--filter", "label=org.rtbuild.sbom.scan=1"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(listed.stdout.split())


def test_a_scan_killed_with_sigkill_leaves_no_container_after_the_next(
    built: Built, docker_engine: str, tmp_path: Path
) -> None:
    """kill -9 of rtbuild between the scan's `create` and its `rm` (a CI runner's hard
    timeout, the OOM killer) left the helper container for good (it pins the image too).
    The next scan removes it; a live scanner's container stays."""
    import signal
    import time

    from rtbuild_sbom.leftovers import OWNER_LABEL, owner

    config = _config_file(tmp_path / "rtbuild.toml", dir=str(tmp_path / "sbom"))
    before = _scan_containers(docker_engine)
    labels = ["--label", "org.rtbuild.sbom.scan=1", "--label", f"{OWNER_LABEL}={owner()}"]
    live = subprocess.run(  # made by this (live) test process, by hand
        [docker_engine, "create", *labels, "--entrypoint", "/x", built.image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        proc = subprocess.Popen([*RTBUILD, "--config", str(config), "scan", built.image], cwd=tmp_path)
        deadline = time.monotonic() + 60
        while not (left := _scan_containers(docker_engine) - before - {live}) and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert left, "the scan's container never appeared"
        time.sleep(1)  # a `docker create` still under way when rtbuild died
        left = _scan_containers(docker_engine) - before - {live}
        assert left, "the kill came after the scan removed its container: nothing to sweep"
        again = _rtbuild("--config", str(config), "scan", built.image, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "helper container(s) a killed scan left behind" in again.stderr
        assert _scan_containers(docker_engine) - before == {live}  # the live one's stays
    finally:
        subprocess.run([docker_engine, "rm", "-f", live, *(_scan_containers(docker_engine) - before)], check=False)


def _volumes_holding(docker_engine: str, marker: str) -> list[str]:
    """Local volumes with a file ``m`` reading ``marker`` (copied there from an image by `create`)."""
    names = subprocess.run([docker_engine, "volume", "ls", "-q"], capture_output=True, text=True, check=True)
    found = []
    for name in names.stdout.split():
        shown = subprocess.run(
            [docker_engine, "volume", "inspect", "--format", "{{.Mountpoint}}", name], capture_output=True, text=True
        )
        path = Path(shown.stdout.strip()) / "m"
        try:
            if path.read_text().strip() == marker:
                found.append(name)
        except OSError:
            continue
    return found


def test_a_scan_of_an_image_with_a_volume_leaves_no_volume(docker_engine: str, tmp_path: Path) -> None:
    """`create` makes an anonymous volume for each VOLUME of the image, filled with the
    image's files there; `rm -f` without `-v` left them, one per path and scan."""
    marker = uuid.uuid4().hex
    image = f"rtbuild-test/sbom-volume-{marker[:10]}:1"
    (tmp_path / "Dockerfile").write_text(
        f"FROM busybox:latest\nRUN mkdir /data && echo {marker} > /data/m\nVOLUME /data\n"
    )
    subprocess.run([docker_engine, "build", "-q", "-t", image, str(tmp_path)], capture_output=True, check=True)
    config = _config_file(tmp_path / "rtbuild.toml", dir=str(tmp_path / "sbom"))
    try:
        proc = _rtbuild("--config", str(config), "scan", image, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert _volumes_holding(docker_engine, marker) == []
    finally:
        left = _volumes_holding(docker_engine, marker)
        subprocess.run([docker_engine, "volume", "rm", *left], capture_output=True, check=False)
        subprocess.run([docker_engine, "rmi", "-f", image], capture_output=True, check=False)
