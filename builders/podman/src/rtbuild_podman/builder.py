"""PodmanBuilder: builds through ``podman build`` (Buildah), daemonless, with the no-op skip."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from rtbuild import (
    BuilderCapabilities,
    BuildRequest,
    BuildResult,
    ConfigError,
    ImageInfo,
    RuntimeBuilder,
    builder_settings,
    setting,
)
from rtbuild.enginekit import masked_repr

from .engine import PULL_TIMEOUT_S, PUSH_STALL_S, PUSH_TIMEOUT_S, Podman, labels_of, normalize_id

if TYPE_CHECKING:
    from rtbuild import Config, PruneItem, PrunePolicy

PROGRESS_MODES = ("plain", "none")
FORMATS = ("oci", "docker")
#: What Debian's qemu-user-static (set up by scripts/podman.sh) runs next to amd64.
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x", "linux/riscv64")
#: Build logs kept in log_dir, and their age in days: older ones go before each build (as Docker's).
LOG_KEEP, LOG_MAX_AGE_DAYS = 50, 30.0


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be more than 0"


@dataclass(frozen=True)
class PodmanSettings:
    """``[builders.podman]`` (docs/builders/podman.md)."""

    podman_cli: str | None = setting(None, help="the podman binary (default: podman on PATH)")
    log_dir: str | None = setting(None, path=True)
    log_keep: int = setting(LOG_KEEP, check=lambda v: None if v >= 0 else "must be 0 or more", help="build logs kept")
    log_max_age_days: float = setting(
        LOG_MAX_AGE_DAYS,
        check=lambda v: None if v >= 0 else "must be 0 or more",
        help="build logs older than this are removed",
    )
    progress: str = setting("plain", choices=PROGRESS_MODES)
    skip_unchanged: bool = setting(True)
    insecure_registries: list[str] = setting(default_factory=list)
    format: str = setting("oci", choices=FORMATS, help="podman build --format")
    layers: bool = setting(True, help="podman build --layers")
    pull_timeout: float = setting(PULL_TIMEOUT_S, check=lambda v: _positive(v), help="seconds a podman pull may take")
    push_timeout: float = setting(PUSH_TIMEOUT_S, check=lambda v: _positive(v), help="seconds a podman push may take")
    push_stall_timeout: float = setting(
        PUSH_STALL_S, check=lambda v: _positive(v), help="seconds a podman push may make no progress"
    )

    #: Logged or in a traceback: secret-looking values and URL passwords as *** (fields unchanged).
    __repr__ = masked_repr


class PodmanBuilder(RuntimeBuilder):
    """Builds with Podman (see docs/builders/podman.md)."""

    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities(
        push=True,
        platforms=PLATFORMS,
        multi_platform=True,
        target=True,
        no_cache=True,
        secrets=True,
        dry_run=True,
        prune=True,
    )

    def __init__(
        self,
        *,
        podman_cli: str | None = None,
        log_dir: str | None = None,
        log_keep: int | None = LOG_KEEP,
        log_max_age_days: float | None = LOG_MAX_AGE_DAYS,
        progress: str = "plain",
        skip_unchanged: bool = True,
        insecure_registries: Sequence[str] = (),
        format: str = "oci",
        layers: bool = True,
        pull_timeout: float = PULL_TIMEOUT_S,
        push_timeout: float = PUSH_TIMEOUT_S,
        push_stall_timeout: float = PUSH_STALL_S,
    ) -> None:
        for key, value, choices in (("progress", progress, PROGRESS_MODES), ("format", format, FORMATS)):
            if value not in choices:
                raise ConfigError(
                    f"[builders.podman] {key} must be one of {', '.join(choices)}, not {value!r}",
                    step="read configuration",
                    hint=f"fix {key} in the [builders.podman] table of the configuration file",
                )
        self.log_dir = log_dir
        self.log_keep = log_keep
        self.log_max_age_days = log_max_age_days
        self.progress = progress
        self.skip_unchanged = skip_unchanged
        self.insecure_registries = list(insecure_registries)
        self.format = format
        self.layers = layers
        self.podman = Podman(
            podman_cli,
            insecure_registries=insecure_registries,
            pull_timeout=pull_timeout,
            push_timeout=push_timeout,
            push_stall_timeout=push_stall_timeout,
        )

    @classmethod
    def from_config(cls, config: Config, name: str = "podman") -> PodmanBuilder:
        s = builder_settings(PodmanSettings, config, name, docs="docs/builders/podman.md")
        return cls(
            podman_cli=s.podman_cli,
            log_dir=s.log_dir,
            log_keep=s.log_keep,
            log_max_age_days=s.log_max_age_days,
            progress=s.progress,
            skip_unchanged=s.skip_unchanged,
            # The core's registries (used by every registry call) plus this table's own.
            insecure_registries=[*config.insecure_registries, *s.insecure_registries],
            format=s.format,
            layers=s.layers,
            pull_timeout=s.pull_timeout,
            push_timeout=s.push_timeout,
            push_stall_timeout=s.push_stall_timeout,
        )

    # --- the contract ------------------------------------------------------------------

    def build(
        self,
        path: str,
        tags: list[str],
        platform: str | None = None,
        extra_build_args: list[str] | None = None,
    ) -> str:
        request = BuildRequest(
            path=path, tags=list(tags), platform=platform, extra_build_args=list(extra_build_args or [])
        )
        return self.build_request(request).image

    def build_request(self, request: BuildRequest) -> BuildResult:
        from .baseauth import refuse_creds
        from .build import run_request

        refuse_creds(request.extra_build_args)
        result = run_request(self, request)
        if not result.cached:  # made or reproduced, and tagged now: prune ranks it from now
            from .made import note_made

            note_made(result.details.get("image_id"))
        return result

    def plan(self, request: BuildRequest) -> str:
        """The ``podman build`` command(s) a build would run (no-op skip not consulted)."""
        from rtbuild.enginekit import plan_platforms, split_platforms

        from .baseauth import refuse_creds, shown_argv
        from .build import argv_for, dockerfile_of

        refuse_creds(request.extra_build_args)
        dockerfile = dockerfile_of(request)
        platforms = split_platforms(request.platform)
        if len(platforms) < 2:
            return shlex.join(shown_argv(argv_for(self, request, request.tags, dockerfile, {})))
        lines = []
        for plan in plan_platforms(request.tags, platforms, push=bool(request.push)):
            one = replace(request, platform=plan.platform)
            lines.append(shlex.join(shown_argv(argv_for(self, one, plan.tags, dockerfile, {}))))
            lines += [f"podman push {shlex.quote(tag)}" for tag in plan.push_tags]
        if request.push:
            lines.append(f"# then one index per tag via the registry API: {', '.join(request.tags)}")
        return "\n".join(lines)

    def image_exists(self, image_name: str, pull_from_repo: bool = True, *, platform: str | None = None) -> bool:
        from .images import image_exists

        return image_exists(self, image_name, pull_from_repo, platform=platform)

    def push(self, tag: str) -> None:
        self.podman.push(tag)

    def inspect_image(self, name: str) -> ImageInfo | None:
        doc = self.podman.inspect_image(name)
        if doc is None:
            return None
        size = doc.get("Size")
        parts = (doc.get("Os"), doc.get("Architecture"), doc.get("Variant"))
        platform = "/".join(str(p) for p in parts if p)
        return ImageInfo(
            id=normalize_id(str(doc.get("Id", ""))),
            size=size if isinstance(size, int) else None,
            labels=labels_of(doc),
            created=str(doc["Created"]) if doc.get("Created") else None,
            platforms=(platform,) if platform else (),
        )

    def image_id(self, name: str) -> str | None:
        info = self.inspect_image(name)
        return info.id or None if info else None

    # --- helpers --------------------------------------------------------------------------

    def log_directory(self) -> str:
        from rtbuild.enginekit import default_log_dir

        return self.log_dir or default_log_dir()

    def prune(self, policy: PrunePolicy) -> list[PruneItem]:
        """rtbuild-labelled images by the shared policy (``rtbuild prune``), and old logs in
        a configured ``log_dir``."""
        from .prune import prune_images, prune_logs

        return [*prune_images(self.podman, policy), *prune_logs(self.log_dir, policy)]

    def details(self, **values: Any) -> dict[str, Any]:
        return {key: value for key, value in values.items() if value is not None}

    def __repr__(self) -> str:
        return f"PodmanBuilder(cli={self.podman._configured or 'podman'!r})"


__all__ = ["PodmanBuilder"]
