"""DockerBuilder: BuildKit builds through the docker CLI, with the no-op skip.

What only a build needs (the build spec, the client choice, the engine kit's digest and
log helpers) is imported where a build starts: a runtime exact hit or an ``image_exists``
check asks the engine one question and should not pay for the rest (about 5 ms).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rtbuild import (
    BuilderCapabilities,
    BuildRequest,
    BuildResult,
    ImageInfo,
    RuntimeBuilder,
    builder_settings,
    get_reporter,
)
from rtbuild.errors import ConfigError

from .settings import MODES, PLATFORMS, PROGRESS_MODES, DockerSettings

if TYPE_CHECKING:
    from rtbuild import Config, PruneItem, PrunePolicy
    from rtbuild.enginekit import Inputs

    from .buildkit import BuildClient
    from .spec import BuildOutcome, BuildSpec


def _is_multi(request: BuildRequest) -> bool:
    # The multi-platform path (registry client, credentials) is imported only when used.
    from rtbuild.enginekit import split_platforms

    return len(split_platforms(request.platform)) > 1


def _size(info: dict[str, Any] | None) -> int | None:
    size = (info or {}).get("Size")
    return size if isinstance(size, int) else None


class DockerBuilder(RuntimeBuilder):
    """Builds with BuildKit on a Docker engine (see docs/builders/docker.md)."""

    capabilities = BuilderCapabilities(
        push=True,
        platforms=PLATFORMS,
        multi_platform=True,
        target=True,
        no_cache=True,
        secrets=True,
        cache_export=True,
        prune=True,
    )

    def __init__(
        self,
        *,
        docker_cli: str | None = None,
        docker_host: str | None = None,
        buildkit: str = "auto",
        log_dir: str | None = None,
        progress: str = "plain",
        skip_unchanged: bool = True,
        insecure_registries: Sequence[str] = (),
        log_keep: int | None = 50,
        log_max_age_days: float | None = 30,
        push_timeout: float = 1800.0,
        push_stall_timeout: float = 120.0,
    ) -> None:
        for key, value, choices in (("buildkit", buildkit, MODES), ("progress", progress, PROGRESS_MODES)):
            if value not in choices:
                raise ConfigError(
                    f"[builders.docker] {key} must be one of {', '.join(choices)}, not {value!r}",
                    step="read configuration",
                    hint=f"fix {key} in the [builders.docker] table of the configuration file",
                )
        self.docker_cli = docker_cli
        self.docker_host = docker_host
        self.buildkit = buildkit
        self.log_dir = log_dir
        self.progress = progress
        self.skip_unchanged = skip_unchanged
        self.insecure_registries = list(insecure_registries)
        self.log_keep = log_keep
        self.log_max_age_days = log_max_age_days
        self.push_timeout = push_timeout
        self.push_stall_timeout = push_stall_timeout
        self._client: BuildClient | None = None
        self._engine_platform: str | None = None  # the engine's os/arch, read once (engineplatform.py)
        from .lookahead import Lookahead

        self._lookahead = Lookahead()

    @classmethod
    def from_config(cls, config: Config, name: str = "docker") -> DockerBuilder:
        s = builder_settings(DockerSettings, config, name, docs="docs/builders/docker.md")
        return cls(
            docker_cli=s.docker_cli,
            docker_host=s.docker_host,
            buildkit=s.buildkit,
            log_dir=s.log_dir,
            progress=s.progress,
            skip_unchanged=s.skip_unchanged,
            # The core's registries (used by every registry call) plus this table's own.
            insecure_registries=[*config.insecure_registries, *s.insecure_registries],
            log_keep=s.log_keep,
            log_max_age_days=s.log_max_age_days,
            push_timeout=s.push_timeout,
            push_stall_timeout=s.push_stall_timeout,
        )

    # --- the contract ----------------------------------------------------------------

    def spec_for(self, request: BuildRequest) -> BuildSpec:
        from .spec import BuildSpec, request_flags, spec_build_args

        if request.cache_to:
            self.client().require_cache_export()
        # Without --platform the docker client builds for $DOCKER_DEFAULT_PLATFORM: name it,
        # so the input digest says which platform the image is for.
        platform = request.platform or os.environ.get("DOCKER_DEFAULT_PLATFORM") or None
        return BuildSpec(
            path=request.path,
            tags=list(request.tags),
            platform=platform,
            build_args=spec_build_args(platform, request),
            labels=dict(request.labels),
            target=request.target,
            extra_build_args=request_flags(request),
            force=request.force or request.no_cache,
            secret_values=[secret.value() for secret in request.secrets],
        )

    def build_request(self, request: BuildRequest) -> BuildResult:
        if _is_multi(request):
            from .platforms import build_platforms

            return build_platforms(self, request)
        outcome = self.run(self.spec_for(request))
        details = outcome.details()
        if request.push and outcome.cached and outcome.image_id:
            from rtbuild.enginekit import images_current

            # The registry holds this very image under every tag already: no `docker push`.
            # Skipped builds only: BuildKit gives every build a new image (a new Created),
            # so a built one is never in the registry yet, and the check would cost it a read.
            found = images_current(outcome.tags, outcome.image_id, insecure_registries=self.insecure_registries)
            details["registry_current"] = found is not None
            if found is not None:
                details.update(pushed=True, registry_digests=found)
        return BuildResult(
            image=outcome.image,
            tags=outcome.tags,
            builder=self.name or "docker",
            duration_s=outcome.duration_s,
            cached=outcome.cached,
            details=details,
        )

    def plan(self, request: BuildRequest) -> str:
        """The engine command a build would run (no-op skip not consulted)."""
        from .dryrun import command_text

        return command_text(self, request)

    def build(
        self,
        path: str,
        tags: list[str],
        platform: str | None = None,
        extra_build_args: list[str] | None = None,
    ) -> str:
        from .spec import BuildSpec

        return self.run(BuildSpec(path, list(tags), platform, extra_build_args=list(extra_build_args or []))).image

    def image_exists(self, image_name: str, pull_from_repo: bool = True, *, platform: str | None = None) -> bool:
        if self._lookahead.asked(image_name) and not platform:
            return True  # answered together with the base lookup just before (lookahead.py)
        if platform:
            from .platforms import image_exists_for

            return image_exists_for(self, image_name, pull_from_repo, platform)
        from .images import image_exists

        return image_exists(
            image_name, pull_from_repo, docker_host=self.docker_host, insecure_registries=self.insecure_registries
        )

    def push(self, image: str) -> None:
        from .images import push_image
        from .pushretry import push_with_backoff

        bounds = {"timeout": self.push_timeout, "stall_timeout": self.push_stall_timeout}
        push_with_backoff(lambda: push_image(image, docker_host=self.docker_host, **bounds), image)

    def inspect_raw(self, image: str) -> dict[str, Any] | None:
        """The engine's inspect document for a local ``image``; ``None`` when it is absent."""
        from .engine import EngineAPI

        return EngineAPI(self.docker_host).inspect_image(image)

    def inspect_image(self, image: str) -> ImageInfo | None:
        info = self.inspect_raw(image)
        if not info:
            return None
        config = info.get("Config") or {}
        platform = "/".join(str(p) for p in (info.get("Os"), info.get("Architecture"), info.get("Variant")) if p)
        return ImageInfo(
            id=str(info.get("Id") or ""),
            size=_size(info),
            labels=dict(config.get("Labels") or {}),
            created=info.get("Created"),
            platforms=(platform,) if platform else (),
        )

    def image_size(self, image: str) -> int | None:
        """The image's size in bytes as the engine reports it; ``None`` when it is absent."""
        info = self.inspect_image(image)
        return info.size if info else None

    def prune(self, policy: PrunePolicy) -> list[PruneItem]:
        """rtbuild-labelled images by the shared policy, and old logs in a configured log_dir."""
        from .engine import EngineAPI
        from .prune import prune_images, prune_logs

        return [*prune_images(EngineAPI(self.docker_host), policy), *prune_logs(self.log_dir, policy)]

    def image_id(self, image: str) -> str | None:
        """The local image ID (``sha256:...``), so runtime lock hashes follow a re-tagged base.

        The image checked right after this base last time is inspected in the same round
        trip (see :mod:`rtbuild_docker.lookahead`).
        """
        from .engine import EngineAPI

        api = EngineAPI(self.docker_host)
        follow = self._lookahead.expect(image)
        if follow is None or api.uses_sdk:
            info = api.inspect_image(image)
        else:
            answers = api.inspect_images([image, follow])
            if answers.get(follow) is not None:
                self._lookahead.present(follow)
            info = answers.get(image)
        return str(info.get("Id") or "") or None if info else None

    # --- the work --------------------------------------------------------------------

    def client(self) -> BuildClient:
        from .buildkit import choose_client

        if self._client is None:
            self._client = choose_client(self.buildkit, self.docker_cli)
        return self._client

    def ignore_flavor(self) -> str:
        """The .dockerignore dialect of the client that will send the context."""
        from rtbuild.context import flavor_for_client

        return flavor_for_client(self.client().version)

    def inputs_and_context(
        self, spec: BuildSpec, extra: list[str], dockerfile: str, api: Any = None
    ) -> tuple[Inputs | None, Any]:
        """The input digest of ``spec`` and the context hash it was made from.

        The digest is ``None`` when the skip cannot be trusted for this build:

        ``None`` when a base image is not local, when the Dockerfile fetches something the
        digest cannot see (``ADD <url>``, a ``# syntax`` frontend), or when .dockerignore
        uses syntax whose meaning for this client is not modelled. ``extra`` and
        ``dockerfile`` are what :meth:`run` already resolved and validated; ``api`` is
        this build's :class:`~rtbuild_docker.engine.EngineAPI` (its prefetched answers).
        """
        from .inputs import inputs_and_context

        return inputs_and_context(self, spec, extra, dockerfile, api)

    def run(self, spec: BuildSpec) -> BuildOutcome:
        """Build ``spec``, or reuse the tagged images when no input changed."""
        from rtbuild.enginekit import (
            analyse_cached,
            report_skip_disabled,
            skip_blocked,
            warn_secret_args,
        )

        from .engine import EngineAPI
        from .engineplatform import with_engine_args
        from .inputs import first_build, read_text
        from .retag import reuse_current
        from .spec import BuildOutcome, absolute_dockerfile, checked_dockerfile, extra_build_args

        started = time.perf_counter()
        if not spec.tags:
            raise ConfigError("a build needs at least one tag", step="validate request", hint="pass -t NAME:TAG")
        extra = absolute_dockerfile(spec.path, spec.extra_build_args)
        dockerfile = checked_dockerfile(spec.path, extra, self.buildkit)  # before any engine contact
        # FROM base:${TARGETARCH} and the like: the values the engine fills, as build args.
        spec = with_engine_args(self, spec, dockerfile)
        reporter = get_reporter()
        warn_secret_args({**spec.build_args, **extra_build_args(extra)})
        inputs: Inputs | None = None
        ctx: Any = None
        blocked = skip_blocked(spec.extra_build_args)
        if self.skip_unchanged and blocked is None:
            # One instance per build: its prefetched answers serve this check only.
            api = EngineAPI(self.docker_host)
            text = read_text(dockerfile) if dockerfile != "-" else ""  # stdin: context_digest refuses it
            analysis = analyse_cached(text, spec.build_args, spec.platform)
            api.prefetch([*spec.tags, *analysis.images])  # the tags and bases in one round trip
            absent = [name for name in analysis.images if api.peek(name) is None]
            if absent:  # never on an exact hit: its bases are local
                from .bases import check_base_registries

                check_base_registries(api, absent, self.insecure_registries)
            if dockerfile != "-" and not any(api.peek(tag) for tag in spec.tags):
                # No tag exists, so nothing can be reused: the engine starts at once.
                first = first_build(self, spec, extra, dockerfile, analysis, started)
                if first is not None:
                    return first
            inputs, ctx = self.inputs_and_context(spec, extra, dockerfile, api)
            if inputs is not None and not spec.force:
                reused = reuse_current(spec.tags, inputs.digest, api)  # tags a build would add: tagged
                if reused is not None:
                    image, moved = reused
                    image_id = str(image.get("Id", ""))
                    tagged = f"; tagged {', '.join(moved)}" if moved else ""
                    reporter.event(
                        "cached",
                        image=spec.tags[0],
                        image_id=image_id,
                        input_digest=inputs.digest,
                        message=f"no input changed: reusing {spec.tags[0]} (engine build skipped{tagged})",
                    )
                    return BuildOutcome(
                        spec.tags[0],
                        list(spec.tags),
                        True,
                        round(time.perf_counter() - started, 3),
                        image_id=image_id,
                        input_digest=inputs.digest,
                        image_size=_size(image),
                    )
        else:
            if blocked:
                report_skip_disabled([blocked], given=True)
            from .bases import check_dockerfile_bases

            text = read_text(dockerfile) if dockerfile != "-" else ""
            check_dockerfile_bases(EngineAPI(self.docker_host), text, spec, self.insecure_registries)
        return self._engine_build(spec, extra, inputs, started, ctx)

    def _argv(self, spec: BuildSpec, extra: list[str], labels: dict[str, str]) -> list[str]:
        client = self.client()
        argv = client.command()
        if client.buildkit:
            argv.append("--progress=plain")
        for tag in spec.tags:
            argv += ["-t", tag]
        if spec.platform:
            argv += ["--platform", spec.platform]
        for key, value in spec.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        if spec.target:
            argv += ["--target", spec.target]
        return [*argv, *extra, spec.path]

    def _engine_build(
        self, spec: BuildSpec, extra: list[str], inputs: Inputs | None, started: float, ctx: Any = None
    ) -> BuildOutcome:
        from .enginebuild import engine_build

        return engine_build(self, spec, extra, inputs, started, ctx)


def __getattr__(name: str) -> Any:
    # Kept importable from here (as before the spec moved out of the import path).
    if name in ("BuildOutcome", "BuildSpec"):
        from . import spec

        return getattr(spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BuildOutcome", "BuildSpec", "DockerBuilder"]
