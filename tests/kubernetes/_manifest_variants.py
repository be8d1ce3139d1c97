"""Every manifest variant the Kubernetes builder can produce, for the golden files and
``kubernetes-validate --strict`` (shared by the tests and by regenerating the goldens)."""

from __future__ import annotations

from typing import Any

from rtbuild_kubernetes.manifests import JobPlan, manifests
from rtbuild_kubernetes.settings import PRIVILEGE_MODES, PROFILES, Settings


def _plan(**overrides: Any) -> JobPlan:
    values: dict[str, Any] = {
        "build_id": "b123456789",
        "namespace": "builds",
        "tags": ["registry.example:5000/team/app:1.0", "registry.example:5000/team/app:latest"],
        "build_args": {"PYTHON_VERSION": "3.12"},
        "labels": {"org.rtbuild.input-digest": "f" * 32},
    }
    values.update(overrides)
    return JobPlan(**values)


def variants() -> dict[str, list[dict[str, Any]]]:
    """name -> the objects (Secret, Job) of that variant."""
    out: dict[str, list[dict[str, Any]]] = {}
    for profile in PROFILES:
        for privilege in PRIVILEGE_MODES:
            settings = Settings(profile=profile, privilege=privilege).validate()
            out[f"{profile}-{privilege}"] = manifests([_plan(secret_name="rtbuild-app-b123456789-push")], settings)
    full = Settings(
        namespace="builds",
        step_image="registry.example:5000/rtbuild/buildah-step:0.1.0",
        image_pull_policy="Always",
        active_deadline_seconds=900,
        ttl_seconds_after_finished=60,
        requests={"cpu": "2", "memory": "4Gi", "ephemeral-storage": "20Gi"},
        limits={"cpu": "4", "memory": "8Gi", "ephemeral-storage": "40Gi"},
        node_selector={"node-pool": "builders"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "builds", "effect": "NoSchedule"}],
        service_account="rtbuild-builder",
        image_pull_secrets=["site-registry"],
        cache_repository="registry.example:5000/team/app-cache",
        cache_mode="min",
    ).validate()
    out["buildah-all-settings"] = manifests(
        [_plan(secret_name="rtbuild-app-b123456789-push", target="runtime", no_cache=True, insecure_registry=True)],
        full,
    )
    out["buildah-registry-transport"] = manifests(
        [
            _plan(
                secret_name="rtbuild-app-b123456789-push",
                context_ref="registry.example:5000/team/app-rtbuild-context@sha256:" + "a" * 64,
            )
        ],
        Settings(transport="registry").validate(),
    )
    out["buildkit-registry-transport"] = manifests(
        [_plan(context_ref="registry.example:5000/team/app-rtbuild-context@sha256:" + "a" * 64)],
        Settings(profile="buildkit-rootless", privilege="rootless", transport="registry", cache_mode="max").validate(),
    )
    out["buildah-two-platforms"] = manifests(
        [
            _plan(platform="linux/amd64", tags=["registry.example:5000/team/app:rtbuild-b123456789-linux-amd64"]),
            _plan(platform="linux/arm64", tags=["registry.example:5000/team/app:rtbuild-b123456789-linux-arm64"]),
        ],
        Settings(host_network=True).validate(),
    )
    out["buildah-anonymous-push"] = manifests([_plan()], Settings().validate())
    # A secret-looking build arg: its value travels in the Secret, read through secretKeyRef.
    secret_args = {"build_args": {"PYTHON_VERSION": "3.12", "NPM_TOKEN": "<from the Secret>"}}
    out["buildah-secret-build-arg"] = manifests(
        [_plan(secret_name="rtbuild-app-b123456789-push", **secret_args)], Settings().validate()
    )
    out["buildkit-secret-build-arg"] = manifests(
        [_plan(secret_name="rtbuild-app-b123456789-push", **secret_args)],
        Settings(profile="buildkit-rootless", privilege="rootless").validate(),
    )
    return out
