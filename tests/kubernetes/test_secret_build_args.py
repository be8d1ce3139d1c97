"""Build args whose names look secret (``NPM_TOKEN``...): a warning, ``NAME=***`` or no value
at all in the dry run, the value carried into the pod by the per-build Secret (never the pod
spec), and ``***`` wherever the pod's output reaches rtbuild's own output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from _kbuilder_support import Site, rtbuild
from rtbuild import BuildRequest, Reporter
from rtbuild._framework.progress import use_reporter
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.settings import settings_from_table
from test_kubernetes_e2e import _build, _config, _jobs

VALUE = "npm_s3cretTOKENvalue42"


class Recording(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


@pytest.mark.parametrize("profile", ["buildah", "buildkit-rootless"])
def test_dry_run_warns_and_never_prints_a_secret_looking_value(tmp_path: Path, profile: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nARG NPM_TOKEN\n")
    builder = KubernetesBuilder(settings_from_table({"namespace": "builds", "profile": profile}))
    request = BuildRequest(
        path=str(tmp_path),
        tags=["registry.example/team/app:1"],
        build_args={"NPM_TOKEN": VALUE, "PYTHON_VERSION": "3.12"},
        extra_build_args=["--build-arg", f"GH_TOKEN={VALUE}y"],
    )
    reporter = Recording()
    with use_reporter(reporter):
        text = builder.plan(request)
    assert VALUE not in text
    assert "PYTHON_VERSION=3.12" in text
    warnings = [fields for kind, fields in reporter.events if kind == "warning"]
    assert warnings and warnings[0]["names"] == ["GH_TOKEN", "NPM_TOKEN"]
    job, secret = (d for d in yaml.safe_load_all(text) if d)
    # Without push credentials there is still a Secret: it carries the build args.
    assert secret["kind"] == "Secret" and set(secret["data"]) == {
        ".dockerconfigjson",
        "build-arg.GH_TOKEN",
        "build-arg.NPM_TOKEN",
    }
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NPM_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"],
        "key": "build-arg.NPM_TOKEN",
    }


@pytest.mark.engine
@pytest.mark.registry
@pytest.mark.slow
def test_a_secret_looking_build_arg_reaches_the_build_only_through_the_secret(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context(
        "secretarg",
        'FROM BASE\nARG NPM_TOKEN\nRUN echo "token is $NPM_TOKEN" && test "$NPM_TOKEN" = ' + VALUE + "\n",
    )
    tag = f"{site.registry}/team/secretarg:1"
    proc = _build(site, context, tag, extra=("--build-arg", f"NPM_TOKEN={VALUE}"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert VALUE not in proc.stderr and VALUE not in proc.stdout
    assert "token is ***" in proc.stderr  # the pod's log line, masked
    assert "NPM_TOKEN look secret" in proc.stderr
    for obj in _jobs(cluster) + cluster.list("pods", namespace=cluster.namespace):
        assert VALUE not in json.dumps(obj)
    assert cluster.list("secrets", namespace=cluster.namespace) == []
    # A failing step's log tail in --json: masked too.
    failing = site.context("secretfail", 'FROM BASE\nARG NPM_TOKEN\nRUN echo "leaked $NPM_TOKEN" && exit 3\n')
    env = site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml"))
    args = ("build", "--json", str(failing), "--builder", "kubernetes", "-t", f"{site.registry}/team/secretfail:1")
    failed = rtbuild(*args, "--build-arg", f"NPM_TOKEN={VALUE}", cwd=site.root, env=env)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert VALUE not in failed.stdout + failed.stderr
    assert "leaked ***" in failed.stdout + failed.stderr


PASSWORD = "pyp1S3cretPW"
INDEX = f"https://__token__:{PASSWORD}@pypi.example/simple"


@pytest.mark.parametrize(
    "index",
    [
        INDEX,
        # A user name holding a raw '@' (an e-mail address, as Artifactory and Nexus logins are):
        # pip, curl and kubectl's Go read the user up to the ':'; the pattern read no password at
        # all, and the whole URL went inline into the pod spec.
        f"https://robot@corp.example:{PASSWORD}@pypi.example/simple",
        f"https://u:{PASSWORD}@x@pypi.example/simple",  # and one in the password
    ],
)
def test_dry_run_never_prints_a_url_password_and_carries_it_in_the_secret(tmp_path: Path, index: str) -> None:
    """PIP_INDEX_URL=https://__token__:PW@host/simple: the name does not look secret, so the
    dry run printed the URL whole, and the build put it in the pod spec, where anyone who
    may read Jobs reads it (the Docker and Podman builders mask it everywhere)."""
    (tmp_path / "Dockerfile").write_text("FROM busybox\nARG PIP_INDEX_URL\n")
    builder = KubernetesBuilder(settings_from_table({"namespace": "builds"}))
    tags = ["registry.example/team/app:1"]
    request = BuildRequest(path=str(tmp_path), tags=tags, build_args={"PIP_INDEX_URL": index})
    text = builder.plan(request)
    assert PASSWORD not in text
    job, secret = (d for d in yaml.safe_load_all(text) if d)
    assert set(secret["data"]) == {".dockerconfigjson", "build-arg.PIP_INDEX_URL"}
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PIP_INDEX_URL"]["valueFrom"]["secretKeyRef"]["key"] == "build-arg.PIP_INDEX_URL"


@pytest.mark.engine
@pytest.mark.registry
def test_a_url_password_in_a_build_arg_reaches_the_build_only_through_the_secret(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context(
        "urlarg", f'FROM BASE\nARG PIP_INDEX_URL\nRUN test "$PIP_INDEX_URL" = "{INDEX}" && echo index-ok\n'
    )
    proc = _build(site, context, f"{site.registry}/team/urlarg:1", extra=("--build-arg", f"PIP_INDEX_URL={INDEX}"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "index-ok" in proc.stderr
    assert PASSWORD not in proc.stderr and PASSWORD not in proc.stdout
    for obj in _jobs(cluster) + cluster.list("pods", namespace=cluster.namespace):
        assert PASSWORD not in json.dumps(obj)
