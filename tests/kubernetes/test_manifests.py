"""The Kubernetes builder's manifests: golden files, and every variant valid for
Kubernetes 1.30-1.37 under ``kubernetes-validate --strict`` (offline schemas).

Regenerate the golden files after an intended change with
``RTBUILD_UPDATE_GOLDEN=1 pytest tests/kubernetes/test_manifests.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _manifest_variants import variants
from rtbuild_kubernetes.manifests import to_yaml

GOLDEN = Path(__file__).with_name("golden")
VERSIONS = [f"1.{minor}.0" for minor in range(30, 38)]
VARIANTS = variants()
#: The only environment the step gets: settings and the *path* of the mounted credentials.
ALLOWED_ENV = {
    "RTBUILD_TAGS",
    "RTBUILD_BUILD_ARGS",
    "RTBUILD_INSECURE_REGISTRY",
    "REGISTRY_AUTH_FILE",
    "DOCKER_CONFIG",
    "BUILDKITD_FLAGS",
}
KV = str(Path(sys.executable).with_name("kubernetes-validate"))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_manifest_matches_golden_file(name: str) -> None:
    text = to_yaml(VARIANTS[name])
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("RTBUILD_UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"missing {golden}: run with RTBUILD_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


def test_golden_files_are_all_still_produced() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(VARIANTS)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_variant_passes_kubernetes_validate_strict(version: str) -> None:
    # The real CLI, on the golden files (one file per variant, Secret and Job documents).
    files = sorted(str(p) for p in GOLDEN.glob("*.yaml"))
    proc = subprocess.run(
        [KV, "--strict", "--quiet", "-k", version, *files], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_job_invariants() -> None:
    for name, objects in VARIANTS.items():
        for job in (o for o in objects if o["kind"] == "Job"):
            spec = job["spec"]
            assert spec["backoffLimit"] == 0, name
            assert spec["activeDeadlineSeconds"] > 0 and "ttlSecondsAfterFinished" in spec, name
            assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rtbuild"
            assert job["metadata"]["labels"]["rtbuild.dev/build-id"] == "b123456789"
            pod = spec["template"]["spec"]
            assert pod["restartPolicy"] == "Never"
            assert {"name": "workspace", "emptyDir": pod["volumes"][0]["emptyDir"]} == pod["volumes"][0]
            build = pod["containers"][0]
            # Credentials only as a mounted Secret: never in env. Secret-looking build args
            # only through secretKeyRef to the per-build Secret, never as a value.
            envs = build.get("env", []) + pod["initContainers"][0].get("env", [])
            names = {env["name"] for env in envs if "valueFrom" not in env}
            assert names <= ALLOWED_ENV, names - ALLOWED_ENV
            secret = next((o for o in objects if o["kind"] == "Secret"), None)
            for env in (e for e in envs if "valueFrom" in e):
                assert secret is not None and env["valueFrom"] == {
                    "secretKeyRef": {"name": secret["metadata"]["name"], "key": f"build-arg.{env['name']}"}
                }, env
            assert set(build["resources"]) <= {"requests", "limits"}


def test_secret_is_dockerconfigjson_without_credentials_in_the_dry_run() -> None:
    job, secret = VARIANTS["buildah-privileged"]
    assert secret["kind"] == "Secret" and secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["data"] == {".dockerconfigjson": "e30="}  # "{}": filled only at build time
    assert job["kind"] == "Job"  # created first: the Secret names the Job's uid as its owner


def test_every_secret_is_owned_by_its_job() -> None:
    # The garbage collector deletes the Secret with its Job, whatever becomes of rtbuild.
    for name, objects in VARIANTS.items():
        jobs = {o["metadata"]["name"]: i for i, o in enumerate(objects) if o["kind"] == "Job"}
        for i, secret in ((i, o) for i, o in enumerate(objects) if o["kind"] == "Secret"):
            (owner,) = secret["metadata"]["ownerReferences"]
            assert owner["kind"] == "Job" and owner["apiVersion"] == "batch/v1", name
            assert jobs[owner["name"]] < i, f"{name}: the Secret before its Job"
            # true would need update on jobs/finalizers (OwnerReferencesPermissionEnforcement)
            assert owner["blockOwnerDeletion"] is False, name


def test_platform_maps_to_arch_node_selector() -> None:
    jobs = [o for o in VARIANTS["buildah-two-platforms"] if o["kind"] == "Job"]
    arches = [j["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/arch"] for j in jobs]
    assert arches == ["amd64", "arm64"]
    assert len({j["metadata"]["name"] for j in jobs}) == 2


@pytest.mark.parametrize(
    ("node_selector", "expected"),
    [
        ({}, {"kubernetes.io/arch": "amd64"}),  # what the no-op skip reads bases and tags for
        ({"node-pool": "b"}, {"node-pool": "b", "kubernetes.io/arch": "amd64"}),
        ({"kubernetes.io/arch": "arm64"}, {"kubernetes.io/arch": "arm64"}),  # the skip follows it
        ({"beta.kubernetes.io/arch": "arm64"}, {"beta.kubernetes.io/arch": "arm64"}),
    ],
)
def test_without_a_platform_the_pod_runs_where_the_skip_looks(
    node_selector: dict[str, str], expected: dict[str, str]
) -> None:
    """Without --platform or an arch in node_selector the pod landed on any node: on a
    mixed cluster an arm64 image whose digest named the bases' amd64 entries, so a base whose
    arm64 entry alone moved was reported cached."""
    from _manifest_variants import _plan
    from rtbuild_kubernetes.manifests import manifests
    from rtbuild_kubernetes.run import target_platforms
    from rtbuild_kubernetes.settings import Settings

    settings = Settings(node_selector=node_selector).validate()
    (job,) = [o for o in manifests([_plan(secret_name="s")], settings) if o["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["nodeSelector"] == expected
    builder = type("B", (), {"settings": settings})()
    request = type("R", (), {"platforms": lambda self: []})()
    arch = expected.get("kubernetes.io/arch") or expected["beta.kubernetes.io/arch"]
    assert (target_platforms(builder, request) or ["linux/amd64"]) == [f"linux/{arch}"]
