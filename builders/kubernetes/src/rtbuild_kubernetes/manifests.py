"""The Kubernetes objects of one build: a dockerconfigjson Secret and a Job.

Pure functions of the settings and a :class:`JobPlan` (no client, no cluster): the dry run
prints them, the golden tests compare them, ``kubernetes-validate --strict`` checks them.
"""

from __future__ import annotations

import base64
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from rtbuild.enginekit import masked_repr

from .buildargs import KEY_PREFIX, secret_names
from .settings import DEFAULT_STEP_IMAGES, Settings

MANAGED_BY = "app.kubernetes.io/managed-by"
BUILD_ID_LABEL = "rtbuild.dev/build-id"
PLATFORM_LABEL = "rtbuild.dev/platform"
WORKSPACE = "/workspace"
CONTEXT_DIR = f"{WORKSPACE}/context"
READY_MARKER = f"{WORKSPACE}/.rtbuild-ready"
AUTH_DIR = "/rtbuild/auth"
INIT_CONTAINER = "context"
BUILD_CONTAINER = "build"
#: The Secret's owner uid in a dry run (the cluster gives the Job its uid when it is created).
DRY_RUN_UID = "<uid of the Job, given by the cluster>"
#: The init container's wait for the upload (exits 3 after the upload timeout).
#: How the upload's shell ends: its PID into the ready marker, renamed into place whole, so
#: the init container can wait for that shell to be gone (see ``_WAIT_SCRIPT``).
UPLOAD_DONE = f"echo $$ > {READY_MARKER}.tmp && mv {READY_MARKER}.tmp {READY_MARKER}"
#: The init container's command: wait for the upload's ready marker, then for the upload's
#: own shell (its PID is the marker's content) to be gone. Leaving while it still runs would
#: kill it with the container, and the upload that just worked would report exit code 137.
_WAIT_SCRIPT = (
    "i=0; while [ ! -f {ready} ]; do sleep 0.2; i=$((i+1)); "
    'if [ "$i" -ge {ticks} ]; then echo "rtbuild: no context upload within {timeout}s" >&2; exit 3; fi; done; '
    'read pid < {ready}; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done'
)


@dataclass
class JobPlan:
    """One Job's inputs, as the builder resolved them from a request."""

    build_id: str
    namespace: str
    tags: list[str]
    dockerfile: str = "Dockerfile"  # relative to the context
    platform: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    cache_from: list[str] = field(default_factory=list)
    cache_to: list[str] = field(default_factory=list)
    extra_build_args: list[str] = field(default_factory=list)
    #: Name of the per-build push-credentials Secret (None: the build pushes anonymously).
    secret_name: str | None = None
    #: ``registry`` transport: the context's reference (REGISTRY/REPO@sha256:...).
    context_ref: str | None = None
    insecure_registry: bool = False

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr

    @property
    def job_name(self) -> str:
        suffix = f"-{_arch(self.platform)}" if self.platform else ""
        return f"rtbuild-{_slug(self.tags[0])}-{self.build_id}{suffix}"[:63].rstrip("-")


def _slug(tag: str) -> str:
    name = tag.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:24] or "image"


def _arch(platform: str | None) -> str:
    parts = (platform or "").split("/")
    return "-".join(parts[1:]) if len(parts) > 1 else parts[0]


def labels_for(plan: JobPlan) -> dict[str, str]:
    labels = {MANAGED_BY: "rtbuild", "app.kubernetes.io/name": "rtbuild-build", BUILD_ID_LABEL: plan.build_id}
    if plan.platform:
        labels[PLATFORM_LABEL] = _arch(plan.platform)
    return labels


def carried_args(plan: JobPlan) -> list[str]:
    """The build args whose values reach the pod through the Secret, not the pod spec."""
    return secret_names(plan.build_args) if plan.secret_name else []


def secret_manifest(plan: JobPlan, dockerconfigjson: bytes | None = None, job_uid: str = DRY_RUN_UID) -> dict[str, Any]:
    """The per-build push credentials and secret-looking build args, owned by the build's
    Job (``job_uid``), so that the garbage collector deletes it with the Job. Without
    ``dockerconfigjson`` (dry run) the data is ``{}`` and every build arg empty: credentials
    and secrets are read only at build time and never printed."""
    assert plan.secret_name
    dry = dockerconfigjson is None
    data = {".dockerconfigjson": base64.b64encode(b"{}" if dry else dockerconfigjson or b"{}").decode("ascii")}
    for name in carried_args(plan):
        value = b"" if dry else plan.build_args[name].encode()
        data[KEY_PREFIX + name] = base64.b64encode(value).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": plan.secret_name,
            "namespace": plan.namespace,
            "labels": labels_for(plan),
            # blockOwnerDeletion false: true would need update on jobs/finalizers (admission
            # plugin OwnerReferencesPermissionEnforcement), and nothing waits for the Secret.
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": plan.job_name,
                    "uid": job_uid,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "type": "kubernetes.io/dockerconfigjson",
        "data": data,
    }


def buildah_args(plan: JobPlan, settings: Settings) -> list[str]:
    """``buildah bud`` arguments (the tags and the context are added by the step script)."""
    args = ["--format", "docker", "-f", plan.dockerfile]
    if plan.platform:
        args += ["--platform", plan.platform]
    carried = carried_args(plan)
    for key, value in plan.build_args.items():
        # buildah reads a build arg given without a value from its environment, which has
        # it from the Secret: the value is never in the pod spec.
        args += ["--build-arg", key if key in carried else f"{key}={value}"]
    for key, value in plan.labels.items():
        args += ["--label", f"{key}={value}"]
    if plan.target:
        args += ["--target", plan.target]
    if plan.no_cache:
        args.append("--no-cache")
    for ref in _cache_from(plan, settings):
        args += ["--cache-from", ref]
    for ref in _cache_to(plan, settings):
        args += ["--cache-to", ref]
    return args + list(plan.extra_build_args)


def _cache_from(plan: JobPlan, settings: Settings) -> list[str]:
    return list(plan.cache_from) or ([settings.cache_repository] if settings.cache_repository else [])


def _cache_to(plan: JobPlan, settings: Settings) -> list[str]:
    return list(plan.cache_to) or ([settings.cache_repository] if settings.cache_repository else [])


def buildkit_script(plan: JobPlan, settings: Settings) -> str:
    """The ``buildctl-daemonless.sh`` call of the buildkit-rootless profile, then the digest
    from its metadata file into the termination message."""
    argv = [
        "buildctl-daemonless.sh",
        "build",
        "--frontend",
        "dockerfile.v0",
        "--local",
        f"context={CONTEXT_DIR}",
        "--local",
        f"dockerfile={CONTEXT_DIR}",
        "--opt",
        f"filename={plan.dockerfile}",
    ]
    opts: list[str] = []
    if plan.platform:
        opts.append(f"platform={plan.platform}")
    carried = carried_args(plan)
    opts += [f"build-arg:{k}={v}" for k, v in plan.build_args.items() if k not in carried]
    opts += [f"label:{k}={v}" for k, v in plan.labels.items()]
    if plan.target:
        opts.append(f"target={plan.target}")
    if plan.no_cache:
        opts.append("no-cache=")
    for opt in opts:
        argv += ["--opt", opt]
    # Expanded by the pod's shell from the environment the Secret fills (names are identifiers).
    secret_opts = "".join(f' --opt "build-arg:{name}=${{{name}}}"' for name in carried)
    for ref in _cache_from(plan, settings):
        argv += ["--import-cache", f"type=registry,ref={ref}"]
    for ref in _cache_to(plan, settings):
        argv += ["--export-cache", f"type=registry,ref={ref},mode={settings.cache_mode}"]
    output = f'type=image,"name={",".join(plan.tags)}",push=true'
    if plan.insecure_registry:
        output += ",registry.insecure=true"
    argv += ["--output", output, "--metadata-file", f"{WORKSPACE}/metadata.json"]
    digest = (
        'sed -n \'s/.*"containerimage.digest": *"\\([^"]*\\)".*/\\1/p\' '
        f"{WORKSPACE}/metadata.json > /dev/termination-log"
    )
    head, tail = argv[: argv.index("--output")], argv[argv.index("--output") :]
    quoted = " ".join(shlex.quote(arg) for arg in head) + secret_opts + " " + " ".join(map(shlex.quote, tail))
    return quoted + " && " + digest


def _security_context(settings: Settings, *, build: bool) -> dict[str, Any]:
    unconfined = {"seccompProfile": {"type": "Unconfined"}, "appArmorProfile": {"type": "Unconfined"}}
    if settings.privilege == "rootless":
        context: dict[str, Any] = {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True}
        return {**context, **unconfined} if build else context
    if not build:
        return {"allowPrivilegeEscalation": False}
    if settings.privilege == "privileged":
        return {"privileged": True}
    # userns: root only inside the pod's own user namespace (hostUsers: false)
    caps = ["SYS_ADMIN", "SETUID", "SETGID", "SYS_CHROOT", "MKNOD"]
    return {"capabilities": {"add": caps}, **unconfined}


def _init_container(plan: JobPlan, settings: Settings) -> dict[str, Any]:
    # The buildkit image has no skopeo: the registry transport fetches with the buildah step image.
    image = settings.image
    if plan.context_ref:
        if settings.profile != "buildah":
            image = DEFAULT_STEP_IMAGES["buildah"]
        command = ["rtbuild-step", "fetch", plan.context_ref]
    else:
        ticks = settings.upload_timeout_seconds * 5
        script = _WAIT_SCRIPT.format(ready=READY_MARKER, ticks=ticks, timeout=settings.upload_timeout_seconds)
        command = ["sh", "-c", script]
    mounts: list[dict[str, Any]] = [{"name": "workspace", "mountPath": WORKSPACE}]
    env: list[dict[str, str]] = []
    if plan.context_ref and plan.secret_name:
        mounts.append({"name": "push-credentials", "mountPath": AUTH_DIR, "readOnly": True})
        env.append({"name": "REGISTRY_AUTH_FILE", "value": f"{AUTH_DIR}/config.json"})
    if plan.context_ref and plan.insecure_registry:
        env.append({"name": "RTBUILD_INSECURE_REGISTRY", "value": "1"})
    container: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command,
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": _security_context(settings, build=False),
    }
    if env:
        container["env"] = env
    return container


def _build_container(plan: JobPlan, settings: Settings) -> dict[str, Any]:
    env: list[dict[str, Any]] = []
    if settings.profile == "buildah":
        command = ["rtbuild-step", "build"]
        env += [
            {"name": "RTBUILD_TAGS", "value": " ".join(plan.tags)},
            {"name": "RTBUILD_BUILD_ARGS", "value": "\n".join(buildah_args(plan, settings))},
        ]
        if plan.secret_name:
            env.append({"name": "REGISTRY_AUTH_FILE", "value": f"{AUTH_DIR}/config.json"})
    else:
        command = ["sh", "-c", buildkit_script(plan, settings)]
        env.append({"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"})
        if plan.secret_name:
            env.append({"name": "DOCKER_CONFIG", "value": AUTH_DIR})
    if plan.insecure_registry:
        env.append({"name": "RTBUILD_INSECURE_REGISTRY", "value": "1"})
    for name in carried_args(plan):
        ref = {"name": plan.secret_name, "key": KEY_PREFIX + name}
        env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    mounts: list[dict[str, Any]] = [{"name": "workspace", "mountPath": WORKSPACE}]
    if plan.secret_name:
        mounts.append({"name": "push-credentials", "mountPath": AUTH_DIR, "readOnly": True})
    resources: dict[str, Any] = {}
    if settings.requests:
        resources["requests"] = dict(settings.requests)
    if settings.limits:
        resources["limits"] = dict(settings.limits)
    return {
        "name": BUILD_CONTAINER,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command,
        "env": env,
        "volumeMounts": mounts,
        "resources": resources,
        "securityContext": _security_context(settings, build=True),
        "terminationMessagePath": "/dev/termination-log",
        # On failure the message is the log's tail: the error reads it without a log call.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def job_manifest(plan: JobPlan, settings: Settings) -> dict[str, Any]:
    """The Job: one pod, no retries, a deadline, a TTL, labels that find it again."""
    labels = labels_for(plan)
    workspace: dict[str, Any] = {}
    if "ephemeral-storage" in settings.limits:
        workspace["sizeLimit"] = settings.limits["ephemeral-storage"]
    volumes: list[dict[str, Any]] = [{"name": "workspace", "emptyDir": workspace}]
    if plan.secret_name:
        volumes.append(
            {
                "name": "push-credentials",
                "secret": {
                    "secretName": plan.secret_name,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "initContainers": [_init_container(plan, settings)],
        "containers": [_build_container(plan, settings)],
        "volumes": volumes,
    }
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    if settings.privilege == "userns":
        pod["hostUsers"] = False
    if settings.host_network:
        pod["hostNetwork"] = True
    selector = dict(settings.node_selector)
    if plan.platform:
        selector["kubernetes.io/arch"] = _arch(plan.platform).split("-")[0]
    elif not {"kubernetes.io/arch", "beta.kubernetes.io/arch"} & set(selector):
        # The no-op skip reads bases and tags for linux/amd64 then (run.target_platforms):
        # on any node the image would be that node's architecture, with a digest naming
        # the bases' amd64 entries (a moved arm64 entry alone, and the skip said "cached").
        selector["kubernetes.io/arch"] = "amd64"
    if selector:
        pod["nodeSelector"] = selector
    pod["terminationGracePeriodSeconds"] = settings.termination_grace_period_seconds
    if settings.tolerations:
        pod["tolerations"] = [dict(item) for item in settings.tolerations]
    if settings.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": plan.job_name, "namespace": plan.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.active_deadline_seconds,
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
        },
    }


def manifests(plans: list[JobPlan], settings: Settings) -> list[dict[str, Any]]:
    """Every object the build would create, in creation order (each Job before the Secret
    it owns; the Secret's owner uid is known only once the Job exists)."""
    out: list[dict[str, Any]] = []
    for plan in plans:
        out.append(job_manifest(plan, settings))
        if plan.secret_name:
            out.append(secret_manifest(plan))
    return out


def to_yaml(objects: list[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, width=1000)


__all__ = [
    "BUILD_CONTAINER",
    "BUILD_ID_LABEL",
    "INIT_CONTAINER",
    "MANAGED_BY",
    "JobPlan",
    "job_manifest",
    "manifests",
    "secret_manifest",
    "to_yaml",
]
