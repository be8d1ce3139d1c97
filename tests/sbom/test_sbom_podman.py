"""rtbuild-sbom with Podman as the engine and an Alpine-style package database: ``rtbuild
scan`` with ``[plugins.sbom] engine = "podman"`` reads a Podman image, names the apk
packages with their origin and fails on a planted Alpine record."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

APK_DB = "P:busybox\nV:1.36.1-r15\nA:x86_64\no:busybox\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n"


@pytest.fixture(scope="module")
def podman_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    podman = shutil.which("podman")
    if podman is None or subprocess.run([podman, "info"], capture_output=True, timeout=60).returncode != 0:
        message = "podman is not installed or does not answer (run `make engine`: scripts/podman.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    context = tmp_path_factory.mktemp("podman-ctx")
    (context / "lib/apk/db").mkdir(parents=True)
    (context / "lib/apk/db/installed").write_text(APK_DB)
    (context / "etc").mkdir()
    (context / "etc/os-release").write_text(f"ID=alpine\nVERSION_ID=3.19.1\nRTBUILD_TEST={uuid.uuid4().hex}\n")
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY lib /lib\nCOPY etc /etc\n")
    image = f"localhost/rtbuild-test/sbom-podman-{uuid.uuid4().hex[:10]}:1"
    subprocess.run([podman, "build", "-q", "-t", image, str(context)], check=True, capture_output=True, timeout=600)
    yield image
    subprocess.run([podman, "rmi", "-f", image], capture_output=True, timeout=120)


def test_scan_reads_a_podman_image_and_matches_alpine_origins(podman_image: str, tmp_path: Path) -> None:
    db = tmp_path / "osv"
    db.mkdir()
    record = {
        "id": "ALPINE-CVE-2099-2",
        "affected": [
            {
                "package": {"ecosystem": "Alpine:v3.19", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r6"}]}],
            }
        ],
        "database_specific": {"severity": "CRITICAL"},
    }
    (db / "ALPINE-CVE-2099-2.json").write_text(json.dumps(record))
    config = tmp_path / "rtbuild.toml"
    config.write_text(f'[plugins.sbom]\nengine = "podman"\ndir = "{tmp_path / "sbom"}"\nosv_db = "{db}"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "rtbuild", "--config", str(config), "scan", podman_image, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    report = json.loads(proc.stdout)
    assert report["components"] == 2 and report["reused"] is False
    [finding] = report["findings"]
    assert (finding["package"], finding["osv_name"], finding["ecosystem"]) == ("libcrypto3", "openssl", "Alpine:v3.19")
    assert (finding["installed"], finding["fixed"], finding["severity"]) == ("3.1.4-r5", "3.1.4-r6", "critical")
    assert finding["purl"].startswith("pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64")
    assert "ALPINE-CVE-2099-2 [critical] libcrypto3 (source openssl) 3.1.4-r5 -> fixed in 3.1.4-r6" in proc.stderr
    # The helper container is gone.
    left = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", "label=org.rtbuild.sbom.scan=1"], capture_output=True, text=True
    )
    assert left.stdout.strip() == ""
