"""The ``[builders.kubernetes]`` settings: one dataclass, validated with clear ConfigErrors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rtbuild import ConfigError

from ._version import STEP_IMAGE_TAG

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
    profile: str = "buildah"
    step_image: str | None = None
    image_pull_policy: str = "IfNotPresent"
    privilege: str = "privileged"
    # the Job
    active_deadline_seconds: int = 3600
    ttl_seconds_after_finished: int = 600
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
    transport: str = "exec"
    context_repository: str | None = None
    cache_repository: str | None = None
    cache_mode: str = "max"
    insecure_registries: list[str] = field(default_factory=list)
    skip_unchanged: bool = True
    upload_timeout_seconds: int = 300

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
        for name in ("active_deadline_seconds", "upload_timeout_seconds"):
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


def _kind_ok(value: Any, default: Any, name: str) -> bool:
    if name in ("tolerations",):
        return isinstance(value, list) and all(isinstance(item, dict) for item in value)
    if isinstance(default, bool) or name == "in_cluster" or name in ("host_network", "skip_unchanged"):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, dict):
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, str)


def _kind_name(default: Any, name: str) -> str:
    if name == "tolerations":
        return "a list of tables"
    if isinstance(default, bool):
        return "a boolean"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, dict):
        return "a table of strings"
    if isinstance(default, list):
        return "a list of strings"
    return "a string"


def settings_from_table(table: dict[str, Any]) -> Settings:
    """Validate a ``[builders.kubernetes]`` table (unknown keys and wrong types are errors)."""
    defaults = Settings()
    known = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(Settings)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        raise ConfigError(
            f"unknown key(s) in {_TABLE}: {', '.join(unknown)}",
            step="read configuration",
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + "see docs/builders/kubernetes.md for every setting",
        )
    values: dict[str, Any] = {}
    for key, value in table.items():
        if not _kind_ok(value, known[key], key):
            raise _error(f"{key} must be {_kind_name(known[key], key)}")
        values[key] = value
    return Settings(**values).validate()


__all__ = ["DEFAULT_STEP_IMAGES", "PRIVILEGE_MODES", "PROFILES", "TRANSPORTS", "Settings", "settings_from_table"]
