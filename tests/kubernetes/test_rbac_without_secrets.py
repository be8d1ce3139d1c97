"""A Role without the ``secrets`` rule (copied from an older guide, or cut down by a cautious
operator): the Secret's create is refused with 403 after the Job's. The Job is deleted; the
Secret never existed, yet rtbuild tried to delete it, was refused again, and warned that it
'could not delete everything', telling the operator to `kubectl delete` a Secret that was never
there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import clean_env, rtbuild, write_config, write_docker_config

pytestmark = [pytest.mark.engine]


def test_a_refused_secret_create_leaves_nothing_to_delete_and_says_only_the_rbac_hint(
    cluster: Any, tmp_path: Path
) -> None:
    cluster.faults.forbid("create", "secrets")
    cluster.faults.forbid("delete", "secrets")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    docker = write_docker_config(tmp_path / "docker", {"127.0.0.1:9": ("robot", "pushpass-123")})  # a Secret is due
    config = write_config(tmp_path / "rtbuild.toml", Path(cluster.kubeconfig_path), skip_unchanged=False)
    env = clean_env(RTBUILD_CONFIG=str(config), DOCKER_CONFIG=str(docker), HOME=str(tmp_path))
    args = ("build", str(context), "--builder", "kubernetes", "-t", "127.0.0.1:9/team/rbac:1", "--json")
    proc = rtbuild(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    error = json.loads(proc.stdout)
    assert error["error"] == "ClusterAuthError" and error["step"] == "create secrets", error
    assert "verb 'create' on resource 'secrets'" in error["hint"], error
    assert "could not delete" not in proc.stderr and "kubectl delete" not in proc.stderr, proc.stderr[-3000:]
    assert "pushpass-123" not in proc.stdout + proc.stderr
    assert cluster.requests_for("delete", "secrets") == []  # nothing was sent to be refused
    assert cluster.created("jobs") == 1
    cluster.wait_for(lambda: cluster.list("jobs") == [], timeout=30)  # the Job it did create is deleted
