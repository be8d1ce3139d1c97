"""Runtime images: a base image plus selected runtime plugins, built once per content hash.

Read :func:`build_runtime_image` top to bottom:

configured runtime image? -> select plugins -> requirements -> describe the dependency and
source contexts in memory (payloads hashed in place) -> lock hash + source hash -> tags
``REPO:<version>_<lock>_<source>`` and ``REPO:<version>_<lock>`` -> exact tag present
(``image_exists`` hook chain)? reuse, writing nothing : render into a temporary directory,
then lock tag present? build the source layers on it : build the dependency layers (lock
tag), then the source layers (exact tag). Composition lives in :mod:`._select`,
:mod:`._compose` and :mod:`._payload`; this module only orchestrates.

Every engine build goes through :func:`rtbuild._framework.pipeline.run_build`, so ``pre_build`` /
``post_build`` hooks and the selected builder apply. An exact hit runs the pipeline too,
with a builder stand-in that returns the existing tag (``result.cached`` is true), so
``post_build`` hooks (metrics) see reuse as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rtbuild.builder import BuildRequest, BuildResult, ImageInfo, RuntimeBuilder
from rtbuild.errors import ConfigError, RegistryError
from rtbuild.runtime._blame import steps_of_plugins
from rtbuild.runtime._checks import check_base, ignored_inputs
from rtbuild.runtime._compose import RuntimeComposition
from rtbuild.runtime._plugin import FileContent, SourcePayload
from rtbuild.runtime._select import (
    EXTRA_FILES_PLUGIN,
    RuntimeTags,
    available_runtime_plugins,
    compose_runtime,
    runtime_tags,
    select_plugins,
)
from rtbuild.runtime._tree import remove_tree, staging_errors

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild._framework.plugins import RtbuildPluginManager

#: ``result.details["runtime_tier"]`` values.
TIER_CONFIGURED, TIER_EXACT, TIER_LOCK, TIER_SCRATCH = "configured", "exact", "lock", "scratch"


def base_image_id(builder: RuntimeBuilder, image: str) -> str | None:
    """The engine's ID (or digest) of ``image``, if the builder can tell (else see
    :func:`rtbuild.runtime._basedigest.registry_base_id`)."""
    value = builder.image_id(image)
    if value:
        return str(value)
    info = builder.inspect_image(image)
    return info.id or None if info else None


class _ExistingImage(RuntimeBuilder):
    """Stands in for the builder on an exact hit: the pipeline runs, the engine does not."""

    def __init__(self, real: RuntimeBuilder, image: str) -> None:
        self.real, self.image, self.name = real, image, real.name
        # Capabilities are the real builder's, so the core checks the request against them;
        # but a reuse has no build context to validate (nothing was rendered).
        self.__dict__["capabilities"] = dataclasses.replace(real.capabilities, needs_dockerfile=False)

    def image_id(self, name: str) -> str | None:
        return self.real.image_id(name)

    def inspect_image(self, name: str) -> ImageInfo | None:
        return self.real.inspect_image(name)

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        return self.image

    def image_exists(self, image_name: str, pull_from_repo: bool = True, *, platform: str | None = None) -> bool:
        from rtbuild.default_plugins.dispatch import takes_platform

        if platform and takes_platform(self.real):
            method: Any = self.real.image_exists  # platform= is an optional v2 keyword
            return bool(method(image_name, pull_from_repo=pull_from_repo, platform=platform))
        return self.real.image_exists(image_name, pull_from_repo=pull_from_repo)

    def build_request(self, request: BuildRequest) -> BuildResult:
        return BuildResult(image=self.image, tags=list(request.tags), builder=self.name, duration_s=0.0, cached=True)

    def push(self, tag: str) -> None:
        self.real.push(tag)

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities (image_size, image_id, inspect_image, ...) are the real
        # builder's, so post_build hooks see the same builder on a hit as on a build.
        if name == "real":  # not yet set (copy, pickle): avoid recursing
            raise AttributeError(name)
        return getattr(self.real, name)


def _names_a_registry(repo: str) -> bool:
    first = repo.split("/", 1)[0]
    return "/" in repo and ("." in first or ":" in first or first == "localhost")


def _present(
    tag: str, config: Config, pm: RtbuildPluginManager, builder: RuntimeBuilder, registry: bool = True
) -> str | None:
    """Where ``tag`` is available: "local", "registry", or ``None``; asked through the
    ``image_exists`` hook chain, so the builder answers with its own registry settings
    (insecure registries, credentials) and plugins can answer first.

    A tag only the registry holds is fetched by the builder (``pull_from_repo``): the exact
    image is about to be run, the lock image is the next build's ``FROM``. With ``config.platform``
    set, only an image for it counts (an index lacking one of the platforms is absent), when the
    builder can tell platforms apart. ``registry=False`` asks the engine only.
    """
    from rtbuild._framework.pipeline import check_image
    from rtbuild.default_plugins.dispatch import takes_platform

    # A v1 builder cannot check a platform: as before, its answer is for any platform.
    platform = config.platform if takes_platform(builder) else None
    if check_image(tag, pull_from_repo=False, config=config, pm=pm, builder=builder, platform=platform):
        return "local"
    if registry and _names_a_registry(tag):
        from rtbuild._framework.progress import get_reporter

        try:
            if check_image(tag, pull_from_repo=True, config=config, pm=pm, builder=builder, platform=platform):
                return "registry"
        except RegistryError as exc:  # an unreachable registry means "build it"
            get_reporter().line(f"rtbuild: cannot check {tag} in its registry ({exc}); building", source="runtime")
    return None


def _runtime_cache(*parts: str) -> str:
    from rtbuild._framework.paths import cache_dir

    path = str(cache_dir("runtime", *parts))
    if not os.path.isdir(path):  # one stat on the exact-hit path, not a mkdir per level
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot use {path} for runtime contexts: {exc.strerror or exc}",
                step="prepare runtime context",
                hint="make $XDG_CACHE_HOME (default ~/.cache) a writable directory, or point it at one",
            ) from exc
    return path


def _no_context_dir() -> str:
    """The (empty, persistent) directory an exact hit passes as its context: nothing is rendered."""
    return _runtime_cache("no-context")


#: A staging directory unused this long is removed (the next build copies its payload again).
STAGE_MAX_AGE_S = 2 * 24 * 3600


def _stage_dir(repo: str, base: str, plugins: Sequence[str]) -> str:
    """The source context's staging directory of one composition (repo, base, plugin names).

    Touched on every use; others unused for :data:`STAGE_MAX_AGE_S` are removed, so
    compositions that are no longer built (test repositories, old plugin sets) do not
    keep their payload copies in the cache for ever.
    """
    import xxhash

    key = xxhash.xxh3_64_hexdigest("\0".join([repo, base, *plugins]).encode())
    stage = _runtime_cache("stage", key)
    os.utime(stage)
    cutoff = time.time() - STAGE_MAX_AGE_S
    with os.scandir(os.path.dirname(stage)) as entries:
        for entry in entries:
            if entry.name != key and entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                with contextlib.suppress(OSError):
                    remove_tree(entry.path)
    return stage


def _run(
    context: str,
    tags: list[str],
    stage: str,
    *,
    config: Config,
    pm: RtbuildPluginManager,
    builder: RuntimeBuilder,
    build_args: Mapping[str, str],
    push: bool,
    force: bool,
    data: Mapping[str, Any],
    extra: list[str],
) -> BuildResult:
    from rtbuild._framework.pipeline import run_build

    request = BuildRequest(
        path=context,
        tags=tags,
        build_args=dict(build_args),
        builder=builder.name or None,
        push=push,
        extra_build_args=list(extra),
    )
    request.data.update(data)
    # Plugin-to-plugin data (rtbuild itself never reads it): which runtime stage this
    # build is, for post_build hooks such as the metrics plugin. Documented in runtime.md.
    request.data["runtime_stage"] = stage
    if force:
        request.force = True
    return run_build(request, config=config, pm=pm, builder=builder)


def _announce(tier: str, message: str) -> None:
    from rtbuild._framework.progress import get_reporter

    get_reporter().event("runtime_tier", tier=tier, message=f"runtime image: {message}")


def _configured_result(image: str, given: dict[str, Any]) -> BuildResult:
    details = {"runtime_tier": TIER_CONFIGURED, "ignored": ignored_inputs(given)}
    return BuildResult(image=image, tags=[image], builder="", duration_s=0.0, cached=True, details=details)


def _build_missing(
    composition: RuntimeComposition,
    tags: RuntimeTags,
    base: str,
    force: bool,
    builder: RuntimeBuilder,
    details: dict[str, Any],
    common: dict[str, Any],
) -> tuple[str, BuildResult]:
    """The lock or scratch tier: build what is missing; return the tier and the result."""
    config: Config = common["config"]
    lock_at = None if force else _present(tags.lock, config, common["pm"], builder)
    if lock_at is not None:
        tier = TIER_LOCK
        details["found_in"] = lock_at
        _announce(tier, f"dependency image {tags.lock} exists ({lock_at}): building the source layers only")
    else:
        tier = TIER_SCRATCH
        why = "--force-rebuild" if force else "no tag of this composition exists"
        _announce(tier, f"{why}: building the dependency layers ({tags.lock}), then the source layers")
        import tempfile  # imported here: an exact or lock hit renders nothing

        with tempfile.TemporaryDirectory(prefix="rtbuild-runtime-") as tmp:
            with staging_errors(tmp):
                deps_dir = composition.deps.write(f"{tmp}/deps")
            with steps_of_plugins(composition, base, common["config"]):
                _run(deps_dir, [tags.lock], "deps", builder=builder, force=force, **common)
    # The source context is staged in a directory kept per composition, so only the files
    # that changed since the last build are copied (and sent to the engine).
    from rtbuild._framework.locks import build_lock

    stage = _stage_dir(tags.lock.rsplit(":", 1)[0], base, composition.plugins)
    with build_lock([f"{stage}@runtime-stage"]):
        with staging_errors(stage):
            source_dir = composition.source.write(stage, composition.source_dockerfile(tags.lock))
        with steps_of_plugins(composition, base):
            result = _run(source_dir, [tags.exact], "source", builder=builder, force=force, **common)
    if tier == TIER_SCRATCH:
        result.tags = [*result.tags, tags.lock]
    return tier, result


def build_runtime_image(
    config: Config | None = None,
    base_image: str | None = None,
    plugins: Sequence[str] | None = None,
    *,
    repo: str | None = None,
    build_args: Mapping[str, str] | None = None,
    push: bool | None = None,
    force_rebuild: bool = False,
    no_cache: bool = False,
    extra_files: Mapping[str, FileContent] | None = None,
    payloads: Sequence[SourcePayload] | None = None,
    pm: RtbuildPluginManager | None = None,
    builder: RuntimeBuilder | None = None,
) -> BuildResult:
    """Build (or reuse) the runtime image for ``base_image`` + ``plugins``; return the result.

    ``base_image`` defaults to ``config.sandbox.base_container_image``, ``plugins`` to
    ``config.runtime.plugins``, ``repo`` to ``config.runtime.repo``. A configured
    ``sandbox.runtime_container_image`` is returned as is. ``result.image`` is what to run;
    ``result.details`` holds ``runtime_tier`` (exact/lock/scratch/configured), both tags and
    hashes. ``payloads`` (directories or installed distributions) and ``extra_files``
    (image path -> content) are the caller's own source groups, built last, so changing
    them changes only the source hash. ``no_cache`` passes ``--no-cache`` to the engine
    builds (a true scratch build, for measurements). An exact hit writes nothing: the
    contexts are rendered into a temporary directory only when something is built.
    """
    from rtbuild._framework.config import load_config
    from rtbuild._framework.locks import build_lock
    from rtbuild._framework.plugins import get_plugin_manager

    started = time.perf_counter()
    config = config or load_config()
    if config.sandbox.runtime_container_image:  # what would have been built from is said, not dropped
        return _configured_result(config.sandbox.runtime_container_image, locals())
    base = check_base(base_image or config.sandbox.base_container_image, given=bool(base_image))
    pm = pm or get_plugin_manager(config)
    names = list(config.runtime.plugins if plugins is None else plugins)
    available = available_runtime_plugins(config, pm)
    select_plugins(available, names, pm)  # name errors before engine errors
    builder = builder or pm.create_builder(config.builder, config)
    args = dict(build_args or {})
    from rtbuild.runtime._basedigest import base_identity

    base_id = base_identity(builder, base, base_image_id(builder, base), config)
    composition = compose_runtime(
        config,
        base,
        names,
        pm=pm,
        base_id=base_id,
        build_args=args,
        extra_files=extra_files,
        payloads=payloads,
        available=available,
        builder=builder,
    )
    tags = runtime_tags(composition, repo or config.runtime.repo)
    push = config.push if push is None else push
    details: dict[str, Any] = {
        "exact_tag": tags.exact,
        "lock_tag": tags.lock,
        "lock_hash": composition.lock_hash,
        "source_hash": composition.source_hash,
        "base_image": base,
        "base_image_id": base_id,
        "plugins": composition.plugins,
        "layers": sum(composition.layers.values()),
        "payload_files": sum(tree.payload.files for tree in composition.source.trees),
    }
    data: dict[str, Any] = {}
    extra = ["--no-cache"] if no_cache else []
    common: dict[str, Any] = {
        "config": config,
        "pm": pm,
        "build_args": args,
        "push": push,
        "data": data,
        "extra": extra,
    }

    # An exact hit needs no lock: the image is there. Otherwise one build at a time per
    # exact tag (threads and processes); a waiter then finds the image the first one built.
    exact_at = None if force_rebuild else _present(tags.exact, config, pm, builder)
    if exact_at is None:
        with build_lock([f"{tags.exact}@runtime"]):
            # The lock's holder built here: only the engine is asked again, not the registry.
            exact_at = None if force_rebuild else _present(tags.exact, config, pm, builder, registry=False)
            if exact_at is None:
                tier, result = _build_missing(composition, tags, base, force_rebuild, builder, details, common)
    if exact_at is not None:
        tier = TIER_EXACT
        _announce(tier, f"{tags.exact} exists ({exact_at}): reusing it, nothing to build")
        # The pipeline still runs the hooks; nothing is built or rendered. An image
        # only the registry holds is already pushed.
        common["push"] = push and exact_at == "local"
        reuse = _ExistingImage(builder, tags.exact)
        result = _run(_no_context_dir(), [tags.exact], TIER_EXACT, builder=reuse, force=False, **common)
        details["found_in"] = exact_at
    details["runtime_tier"] = tier
    result.details.update(details)
    result.cached = tier == TIER_EXACT
    result.duration_s = round(time.perf_counter() - started, 3)
    return result


def get_runtime_image(
    config: Config | None = None,
    base_image: str | None = None,
    plugins: Sequence[str] | None = None,
    **kwargs: Any,
) -> str:
    """The name of the runtime image to run (built or reused); see :func:`build_runtime_image`."""
    return build_runtime_image(config, base_image, plugins, **kwargs).image


__all__ = [
    "EXTRA_FILES_PLUGIN",
    "TIER_CONFIGURED",
    "TIER_EXACT",
    "TIER_LOCK",
    "TIER_SCRATCH",
    "available_runtime_plugins",
    "base_image_id",
    "build_runtime_image",
    "compose_runtime",
    "get_runtime_image",
]
