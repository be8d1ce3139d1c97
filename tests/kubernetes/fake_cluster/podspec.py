"""Translate a pod's container spec into a Docker Engine create body: command/args with the
kubelet's $(VAR) expansion, env (value, fieldRef, secretKeyRef, configMapKeyRef, envFrom),
volume mounts (emptyDir and secret/configMap files prepared on the host), security context
and (optionally) the memory/cpu limits."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

from .store import Store

Obj = dict[str, Any]
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
# Capability names by bit, as far as Debian's dockerd 20.10 knows them (it rejects CAP_PERFMON+).
_CAPS = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
]


def privileged_stand_in() -> list[str] | None:
    """None when this host can run `--privileged` containers; else the capabilities it can grant.

    In a sandbox whose bounding set lacks a capability (here CAP_SYS_RESOURCE), dockerd's
    --privileged fails ("unable to apply caps"); the fake then gives a privileged container every
    capability the host has, no seccomp/AppArmor confinement and /dev/fuse instead."""
    match = re.search(r"CapBnd:\s*([0-9a-f]+)", Path("/proc/self/status").read_text())
    bounding = int(match.group(1), 16) if match else 0
    granted = [name for bit, name in enumerate(_CAPS) if bounding >> bit & 1]
    return None if len(granted) == len(_CAPS) else granted


PRIVILEGED_CAPS = privileged_stand_in()


class ConfigError(Exception):
    """The container cannot be configured yet (CreateContainerConfigError / FailedMount)."""


def expand(text: str, env: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _VAR.sub(sub, text)


def _secret_value(store: Store, kind: str, namespace: str, ref: Obj) -> str | None:
    resource = "secrets" if kind == "secret" else "configmaps"
    obj = store.get(resource, namespace, ref.get("name", ""))
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{kind} "{ref.get("name")}" not found')
    data = obj.get("data") or {}
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind.capitalize()} {namespace}/{ref.get('name')}")
    value = data[ref["key"]]
    return base64.b64decode(value).decode(errors="replace") if kind == "secret" else str(value)


def _field(pod: Obj, path: str) -> str:
    match = re.match(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((pod["metadata"].get(match.group(1)) or {}).get(match.group(2), ""))
    node: Any = pod
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def environment(store: Store, pod: Obj, container: Obj) -> dict[str, str]:
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind in ("secret", "configMap"):
            ref = source.get(f"{kind}Ref")
            if not ref:
                continue
            obj = store.get("secrets" if kind == "secret" else "configmaps", namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
            for key, value in (obj.get("data") or {}).items():
                env[prefix + key] = base64.b64decode(value).decode(errors="replace") if kind == "secret" else value
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value", "")), env)
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[name] = _field(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            kind = "secret" if "secretKeyRef" in source else "configmap"
            value = _secret_value(store, kind, namespace, source.get("secretKeyRef") or source["configMapKeyRef"])
            if value is not None:
                env[name] = value
        elif "resourceFieldRef" in source:
            env[name] = "0"
    return env


def prepare_volumes(store: Store, pod: Obj, root: Path) -> dict[str, Path]:
    """Host directories for the pod's volumes; secret/configMap contents written now."""
    namespace = pod["metadata"]["namespace"]
    paths: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        name = volume["name"]
        path = root / "volumes" / name
        if "emptyDir" in volume:
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)  # like the kubelet's emptyDir
        elif "secret" in volume or "configMap" in volume:
            kind = "secret" if "secret" in volume else "configMap"
            spec = volume[kind]
            ref_name = spec.get("secretName") if kind == "secret" else spec.get("name")
            obj = store.get("secrets" if kind == "secret" else "configmaps", namespace, ref_name or "")
            if obj is None and not spec.get("optional"):
                raise ConfigError(
                    f'MountVolume.SetUp failed for volume "{name}" : {kind.lower()} "{ref_name}" not found'
                )
            path.mkdir(parents=True, exist_ok=True)
            data = (obj or {}).get("data") or {}
            decoded = {k: base64.b64decode(v) if kind == "secret" else str(v).encode() for k, v in data.items()}
            for k, v in ((obj or {}).get("binaryData") or {}).items():
                decoded[k] = base64.b64decode(v)
            items = spec.get("items") or [{"key": k, "path": k} for k in decoded]
            for item in items:
                if item["key"] not in decoded:
                    raise ConfigError(f'MountVolume.SetUp failed for volume "{name}" : key {item["key"]} missing')
                target = path / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(decoded[item["key"]])
                os.chmod(target, item.get("mode", spec.get("defaultMode", 0o644)))
        elif "hostPath" in volume:
            path = Path(volume["hostPath"]["path"])
        else:
            raise ConfigError(f'volume "{name}": this fake cluster supports emptyDir, secret, configMap and hostPath')
        paths[name] = path
    return paths


def _quantity(text: str | int | float) -> float:
    value = str(text)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def create_body(
    store: Store,
    pod: Obj,
    container: Obj,
    volumes: dict[str, Path],
    termination_file: Path,
    labels: dict[str, str],
    enforce_limits: bool,
) -> Obj:
    env = environment(store, pod, container)
    command = [expand(part, env) for part in container.get("command") or []]
    args = [expand(part, env) for part in container.get("args") or []]
    binds = [f"{termination_file}:{container['terminationMessagePath']}"]
    for mount in container.get("volumeMounts") or []:
        source = volumes[mount["name"]]
        if mount.get("subPath"):
            source = source / mount["subPath"]
            source.mkdir(parents=True, exist_ok=True)
        volume = next(v for v in pod["spec"].get("volumes") or [] if v["name"] == mount["name"])
        read_only = mount.get("readOnly") or "secret" in volume or "configMap" in volume
        binds.append(f"{source}:{mount['mountPath']}{':ro' if read_only else ''}")
    pod_sc = pod["spec"].get("securityContext") or {}
    sc = {
        **{k: v for k, v in pod_sc.items() if k in ("runAsUser", "runAsGroup")},
        **(container.get("securityContext") or {}),
    }
    caps = sc.get("capabilities") or {}
    security_opt = []
    if sc.get("allowPrivilegeEscalation") is False:
        security_opt.append("no-new-privileges")
    if ((sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")) == "Unconfined":
        security_opt.append("seccomp=unconfined")
    if ((sc.get("appArmorProfile") or pod_sc.get("appArmorProfile") or {}).get("type")) == "Unconfined":
        security_opt.append("apparmor=unconfined")
    user = ""
    if "runAsUser" in sc:
        user = str(sc["runAsUser"]) + (f":{sc['runAsGroup']}" if "runAsGroup" in sc else "")
    cap_add = [str(c).upper().removeprefix("CAP_") for c in caps.get("add") or []]
    privileged = bool(sc.get("privileged"))
    devices = []
    if privileged and PRIVILEGED_CAPS is not None:
        privileged = False
        cap_add = sorted(set(cap_add) | set(PRIVILEGED_CAPS))
        security_opt += ["seccomp=unconfined", "apparmor=unconfined"]
    if (sc.get("privileged") or "SYS_ADMIN" in cap_add) and os.path.exists("/dev/fuse"):
        devices.append({"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"})
    host: Obj = {
        "Binds": binds,
        "NetworkMode": "host",  # a pod step reaches registries on the host's loopback
        "Privileged": privileged,
        "CapAdd": cap_add,
        "CapDrop": list(caps.get("drop") or []),
        "ReadonlyRootfs": bool(sc.get("readOnlyRootFilesystem")),
        "SecurityOpt": sorted(set(security_opt)),
        "Devices": devices,
    }
    limits = (container.get("resources") or {}).get("limits") or {}
    if enforce_limits and "memory" in limits:
        host["Memory"] = int(_quantity(limits["memory"]))
        host["MemorySwap"] = host["Memory"]
    if enforce_limits and "cpu" in limits:
        host["NanoCpus"] = int(_quantity(limits["cpu"]) * 1e9)
    body: Obj = {
        "Image": container["image"],
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Labels": labels,
        "OpenStdin": bool(container.get("stdin")),
        "StdinOnce": bool(container.get("stdinOnce")),
        "Tty": bool(container.get("tty")),
        "HostConfig": host,
    }
    if command:
        body["Entrypoint"] = command
        body["Cmd"] = args
    elif args:
        body["Cmd"] = args
    if container.get("workingDir"):
        body["WorkingDir"] = container["workingDir"]
    if user:
        body["User"] = user
    return body
