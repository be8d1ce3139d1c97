"""What the fake serves: the resource table, discovery documents, Status objects, and the API
server's defaulting and validation for the kinds the builder uses."""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from typing import Any

from .store import ApiError

Obj = dict[str, Any]
VERSION = {
    "major": "1",
    "minor": "32",
    # Honest name: this is rtbuild's test fake, not a Kubernetes build.
    "gitVersion": "v1.32.0+rtbuild-fake-cluster",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "none (python fake)",
    "compiler": "fake",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    singular: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",), singular="namespace"),
    Resource("", "v1", "nodes", "Node", namespaced=False, short=("no",), singular="node"),
    Resource(
        "", "v1", "pods", "Pod", short=("po",), subresources=("log", "exec", "status", "eviction"), singular="pod"
    ),
    Resource("", "v1", "secrets", "Secret", singular="secret"),
    Resource("", "v1", "configmaps", "ConfigMap", short=("cm",), singular="configmap"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",), singular="serviceaccount"),
    Resource("", "v1", "events", "Event", short=("ev",), singular="event"),
    Resource("batch", "v1", "jobs", "Job", subresources=("status",), singular="job"),
]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}


def status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def error_status(exc: ApiError) -> Obj:
    return status(exc.code, exc.reason, exc.message, exc.details)


# -- discovery ------------------------------------------------------------------------------
def api_versions(address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def api_groups() -> Obj:
    groups = sorted({r.group for r in RESOURCES if r.group})
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": f"{group}/v1", "version": "v1"},
            }
            for group in groups
        ],
    }


def api_group(group: str) -> Obj | None:
    for doc in api_groups()["groups"]:
        if doc["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **doc}
    return None


def resource_list(group: str, version: str) -> Obj | None:
    chosen = [r for r in RESOURCES if r.group == group and r.version == version]
    if not chosen:
        return None
    items: list[Obj] = []
    for r in chosen:
        items.append(
            {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
                **({"shortNames": list(r.short)} if r.short else {}),
                **({"categories": ["all"]} if r.plural in ("pods", "jobs") else {}),
            }
        )
        for sub in r.subresources:
            verbs = {"log": ["get"], "exec": ["create", "get"], "eviction": ["create"]}.get(
                sub, ["get", "patch", "update"]
            )
            kind = {"log": "Pod", "exec": "PodExecOptions", "eviction": "Eviction"}.get(sub, r.kind)
            items.append(
                {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": True, "kind": kind, "verbs": verbs}
            )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": chosen[0].api_version, "resources": items}


# -- defaulting and validation (what the real API server does on create) --------------------
def _invalid(kind: str, name: str, field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {field}: {message}',
        {"name": name, "kind": kind, "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]},
    )


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            image = container.get("image", "")
            tail = image.rsplit("/", 1)[-1]
            latest = "@" not in image and (":" not in tail or tail.endswith(":latest"))
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            container.setdefault("resources", {})
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            volume["secret"].setdefault("defaultMode", 0o644)


def validate_pod_spec(kind: str, name: str, spec: Obj, prefix: str) -> None:
    containers = spec.get("containers") or []
    if not containers:
        raise _invalid(kind, name, f"{prefix}.containers", "Required value")
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            cname = container.get("name")
            if not cname:
                raise _invalid(kind, name, f"{prefix}.{group}[{i}].name", "Required value")
            if not container.get("image"):
                raise _invalid(kind, name, f"{prefix}.{group}[{i}].image", "Required value")
            if cname in seen:
                raise _invalid(kind, name, f"{prefix}.{group}[{i}].name", f'Duplicate value: "{cname}"')
            seen.add(cname)
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            for j, mount in enumerate(container.get("volumeMounts") or []):
                if mount.get("name") not in volumes:
                    raise _invalid(
                        kind, name, f"{prefix}.{group}[{i}].volumeMounts[{j}].name", f'Not found: "{mount.get("name")}"'
                    )


def prepare_job(job: Obj) -> None:
    meta, spec = job["metadata"], job.setdefault("spec", {})
    name = meta.get("name") or meta.get("generateName", "")
    template = spec.setdefault("template", {})
    pod_spec = template.setdefault("spec", {})
    if pod_spec.get("restartPolicy") not in ("Never", "OnFailure"):
        raise _invalid(
            "Job", name, "spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"'
        )
    validate_pod_spec("Job", name, pod_spec, "spec.template.spec")
    default_pod_spec(pod_spec)
    for key, value in (("backoffLimit", 6), ("completions", 1), ("parallelism", 1)):
        spec.setdefault(key, value)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    job.setdefault("status", {})


def label_job(job: Obj) -> None:
    """After the uid is known: the controller-uid selector and template labels."""
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    spec = job["spec"]
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template_meta = spec["template"].setdefault("metadata", {})
    template_meta.setdefault("labels", {}).update(labels)
    job["metadata"].setdefault("labels", {}).update(
        {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name, **job["metadata"]["labels"]}
    )


def prepare_pod(pod: Obj) -> None:
    name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
    spec = pod.setdefault("spec", {})
    validate_pod_spec("Pod", name, spec, "spec")
    default_pod_spec(spec)
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}


def qos_class(spec: Obj) -> str:
    resources = [c.get("resources") or {} for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k) and (r.get("requests") or {}).get(k, r["limits"][k]) == r["limits"][k]
        for r in resources
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def prepare_secret(secret: Obj) -> None:
    name = secret["metadata"].get("name", "")
    data = secret.setdefault("data", {}) or {}
    for key, value in (secret.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    secret["data"] = data
    for key, value in data.items():
        try:
            base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise _invalid("Secret", name, f"data[{key}]", "illegal base64 data") from exc
    secret.setdefault("type", "Opaque")
    if secret["type"] == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in data:
        raise _invalid("Secret", name, "data[.dockerconfigjson]", "Required value")


def strip_for_list(obj: Obj) -> Obj:
    """List items carry no kind/apiVersion on a real server."""
    item = copy.deepcopy(obj)
    item.pop("kind", None)
    item.pop("apiVersion", None)
    return item
