"""The ``[builders.kubernetes]`` settings: one dataclass, validated with clear ConfigErrors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rtbuild import ConfigError
from rtbuild.enginekit import masked_repr

from ._version import STEP_IMAGE_TAG

if TYPE_CHECKING:
    from rtbuild import Config

PROFILES = ("buildah", "buildkit-rootless")
PRIVILEGE_MODES = ("privileged", "userns", "rootless")
TRANSPORTS = ("exec", "registry")
CACHE_MODES = ("min", "max")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESOURCE_KEYS = ("cpu", "memory", "ephemeral-storage")

#: The step image each profile uses unless ``step_image`` says otherwise.
DEFAULT_STEP_IMAGES = {
    "buildah": f"rtbuild/buildah-step:{STEP_IMAGE_TAG}",
    "buildkit-rootless": "moby/buildkit:v0.17.3-rootless",
}

_TABLE = "[builders.kubernetes]"


@dataclass
class Settings:
    """Every setting of the Kubernetes builder (docs/builders/kubernetes.md lists them)."""

    # cluster access
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str | None = None
    # the build step
    profile: Literal["buildah", "buildkit-rootless"] = "buildah"
    step_image: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    privilege: Literal["privileged", "userns", "rootless"] = "privileged"
    # the Job
    active_deadline_seconds: int = 3600
    ttl_seconds_after_finished: int = 600
    # A cancelled build step has nothing to flush: a short grace frees the node at once
    # (the pod default, 30 s, made every Ctrl-C and deadline wait that long).
    termination_grace_period_seconds: int = 5
    requests: dict[str, str] = field(
        default_factory=lambda: {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "5Gi"}
    )
    limits: dict[str, str] = field(default_factory=lambda: {"memory": "4Gi", "ephemeral-storage": "20Gi"})
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    service_account: str | None = None
    image_pull_secrets: list[str] = field(default_factory=list)
    host_network: bool = False
    # the context and the registry
    transport: Literal["exec", "registry"] = "exec"
    context_repository: str | None = None
    cache_repository: str | None = None
    cache_mode: Literal["min", "max"] = "max"
    insecure_registries: list[str] = field(default_factory=list)
    skip_unchanged: bool = True
    upload_timeout_seconds: int = 300

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr

    @property
    def image(self) -> str:
        return self.step_image or DEFAULT_STEP_IMAGES[self.profile]

    def validate(self) -> Settings:
        for name, allowed in (
            ("profile", PROFILES),
            ("privilege", PRIVILEGE_MODES),
            ("transport", TRANSPORTS),
            ("cache_mode", CACHE_MODES),
            ("image_pull_policy", PULL_POLICIES),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise _error(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        for name in ("requests", "limits"):
            unknown = sorted(set(getattr(self, name)) - set(RESOURCE_KEYS))
            if unknown:
                raise _error(f"{name} knows {', '.join(RESOURCE_KEYS)}, not {', '.join(unknown)}")
        for name in ("active_deadline_seconds", "upload_timeout_seconds", "termination_grace_period_seconds"):
            if getattr(self, name) <= 0:
                raise _error(f"{name} must be a positive number of seconds")
        if self.ttl_seconds_after_finished < 0:
            raise _error("ttl_seconds_after_finished must be 0 or more")
        if self.in_cluster and self.kubeconfig:
            raise _error("in_cluster and kubeconfig exclude each other: set one")
        return self


def _error(problem: str) -> ConfigError:
    return ConfigError(
        f"{_TABLE} {problem}", step="read configuration", hint="see docs/builders/kubernetes.md for every setting"
    )


def _tolerations(value: Any) -> list[dict[str, Any]]:
    if not (isinstance(value, list) and all(isinstance(item, dict) for item in value)):
        raise _error("tolerations must be a list of tables (as in a pod spec)")
    return value


def settings_from_table(table: dict[str, Any], config: Config | None = None) -> Settings:
    """Validate a ``[builders.kubernetes]`` table with the core's settings reader (unknown
    keys, types and choices; file and line in errors), plus what it cannot express."""
    from rtbuild import load_settings

    rest = dict(table)
    tolerations = _tolerations(rest.pop("tolerations", []))
    settings = load_settings(
        Settings, rest, section="builders.kubernetes", config=config, docs="docs/builders/kubernetes.md", env={}
    )
    settings.tolerations = tolerations
    return settings.validate()


def settings_from_config(config: Config, name: str) -> Settings:
    settings = settings_from_table(config.builder_config(name), config)
    # The core's build_timeout bounds every engine build; here that is the Job's deadline.
    timeout = config.build_timeout
    if timeout is not None and math.ceil(timeout) < settings.active_deadline_seconds:
        settings.active_deadline_seconds = max(math.ceil(timeout), 1)
    return settings


__all__ = [
    "DEFAULT_STEP_IMAGES",
    "PRIVILEGE_MODES",
    "PROFILES",
    "TRANSPORTS",
    "Settings",
    "settings_from_config",
    "settings_from_table",
]
