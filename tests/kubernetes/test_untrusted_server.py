"""An API server whose TLS certificate the kubeconfig's CA does not vouch for (a rotated
cluster CA, another cluster's kubeconfig): rtbuild said the API was "unreachable" and told the
operator to check the server address and that this machine can reach it, which it could."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from _kbuilder_support import RTBUILD, clean_env, write_config

pytestmark = [pytest.mark.engine]


def test_a_server_certificate_the_kubeconfig_does_not_trust_is_named_so(
    cluster: Any, kubectl: str, tmp_path: Path
) -> None:
    key, crt = tmp_path / "other-ca.key", tmp_path / "other-ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=another cluster's CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    data = yaml.safe_load(kubeconfig.read_text())
    data["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(crt.read_bytes()).decode()
    kubeconfig.write_text(yaml.safe_dump(data))
    # The reference client refuses the server for the same reason.
    listed = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "get", "pods"], capture_output=True, text=True)
    assert listed.returncode != 0 and "certificate signed by unknown authority" in listed.stderr, listed.stderr
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    config = write_config(tmp_path / "rtbuild.toml", kubeconfig, skip_unchanged=False)
    proc = subprocess.run(
        [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", "127.0.0.1:9/team/trust:1", "--json"],
        cwd=tmp_path, env=clean_env(RTBUILD_CONFIG=str(config), HOME=str(tmp_path)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    error = json.loads(proc.stdout)
    assert error["error"] == "ClusterUnreachableError", error
    assert "is not trusted" in error["message"] and "unable to get local issuer certificate" in error["message"], error
    assert "unreachable" not in error["message"] and "certificate-authority" in error["hint"], error
    assert "could not delete" not in proc.stderr and cluster.list("jobs") == [], proc.stderr[-3000:]
