"""Multi-platform requests and platform-aware ``image_exists`` for the Docker builder.

Docker 20.10's local image store holds one platform per tag, so several platforms become
one BuildKit build each (foreign ones under QEMU) under ``TAG-os-arch`` tags, pushed one by
one, and one index per requested tag is assembled through the registry API
(:mod:`rtbuild.enginekit`, :func:`rtbuild.oci.push_index`). See docs/multi-platform.md.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rtbuild import RegistryError, get_reporter
from rtbuild.enginekit import assemble_indexes, build_each_platform, indexes_current, plan_platforms, split_platforms
from rtbuild.oci import RegistryClient, has_platforms, normalize_platform, parse_reference

#: Native, plus what QEMU user emulation runs (docs/multi-platform.md).
from .settings import PLATFORMS

#: How long a `docker pull` of a base image may take before it counts as stalled.
PULL_TIMEOUT_S = 1800

if TYPE_CHECKING:
    from rtbuild import AgentRuntimeBuildError, BuildRequest, BuildResult
    from rtbuild.enginekit import PlatformPlan

    from .builder import DockerBuilder
    from .spec import BuildSpec


def is_multi(request: BuildRequest) -> bool:
    return len(split_platforms(request.platform)) > 1


def build_platforms(builder: DockerBuilder, request: BuildRequest) -> BuildResult:
    """One build per platform; with push, their index under every requested tag."""
    from rtbuild import BuildResult

    from .images import push_image

    started = time.perf_counter()
    platforms = split_platforms(request.platform)
    push = bool(request.push)

    def build(plan: PlatformPlan) -> dict[str, Any]:
        outcome = builder.run(builder.spec_for(replace(request, platform=plan.platform, tags=plan.tags)))
        return {**outcome.details(), "cached": outcome.cached}

    def push_one(tag: str) -> str | None:
        from .pushretry import push_with_backoff

        bounds = {"timeout": builder.push_timeout, "stall_timeout": builder.push_stall_timeout}
        return push_with_backoff(lambda: push_image(tag, docker_host=builder.docker_host, **bounds), tag)

    current: dict[str, str] = {}

    def unchanged(done: dict[str, dict[str, Any]]) -> bool:
        current.update(indexes_current(request.tags, done, insecure_registries=builder.insecure_registries) or {})
        return bool(current)

    plans = plan_platforms(request.tags, platforms, push=push)
    per_platform = build_each_platform(plans, build, push_one, unchanged)
    details: dict[str, Any] = {"platforms": per_platform}
    if push:
        details["index_digests"] = current or assemble_indexes(
            request.tags, platforms, insecure_registries=builder.insecure_registries, per_platform=per_platform
        )
        details["pushed"] = True
        details["registry_current"] = bool(current)
    return BuildResult(
        image=request.tags[0],
        tags=list(request.tags),
        builder=builder.name or "docker",
        duration_s=round(time.perf_counter() - started, 3),
        cached=(not push or bool(current)) and all(entry["cached"] for entry in per_platform.values()),
        details=details,
    )


def plan_text(builder: DockerBuilder, request: BuildRequest) -> str:
    """``--dry-run`` of a multi-platform request: each platform's command, its pushes, the index."""
    lines = []
    for plan in plan_platforms(request.tags, split_platforms(request.platform), push=bool(request.push)):
        lines.append(builder.plan(replace(request, platform=plan.platform, tags=plan.tags)))
        lines += [f"docker push {tag}" for tag in plan.push_tags]
    if request.push:
        lines.append(f"# then one index per tag through the registry API: {', '.join(request.tags)}")
    return "\n".join(lines)


def warn_foreign_base_images(builder: DockerBuilder, spec: BuildSpec, extra: list[str]) -> None:
    """After a build for one named platform: warn about a base image BuildKit took from its
    registry although it is another platform's (:func:`rtbuild.enginekit.warn_foreign_bases`)."""
    if not spec.platform or "," in spec.platform:
        return
    from rtbuild.context import validate_context
    from rtbuild.enginekit import analyse_cached, warn_foreign_bases

    from .inputs import read_text

    dockerfile = validate_context(spec.path, extra)
    if dockerfile == "-":
        return
    text = read_text(dockerfile)
    bases = analyse_cached(text, spec.build_args, spec.platform).images
    warn_foreign_bases(
        text,
        bases,
        spec.platform,
        lambda name: _local_platform(builder, name),
        insecure_registries=builder.insecure_registries,
    )


def explain_foreign_local_base(builder: DockerBuilder, spec: BuildSpec, error: AgentRuntimeBuildError) -> None:
    """A base BuildKit could not resolve although the engine has it: here for another platform.

    BuildKit uses a local image only for the platform it builds; for any other it asks the
    image's registry, so a local ``NAME:arm64`` on an amd64 engine failed with the hint to
    'build or load the base image locally first', which it was.
    """
    step = error.step or ""
    if not step.startswith("load metadata for ") or "," in (spec.platform or ""):
        return
    name = step.removeprefix("load metadata for ").strip()
    try:
        here = _local_platform(builder, name)
    except Exception:  # a better hint only: the engine's error stands
        return
    from rtbuild.enginekit import native_platform

    # Of the build's own platform, it was looked up for another reason (--pull, say).
    if here is None or here == normalize_platform(spec.platform or native_platform()):
        return
    target = spec.platform or "the engine's own platform"
    error.hint = (
        f"{name} is here only for {here}, and this build is for {target}: BuildKit does not use a local"
        f" image of another platform and looked for it in its registry. Build for {here} (--platform {here}),"
        f" or pull or build {name} for {target}"
    )


def _local_platform(builder: DockerBuilder, name: str) -> str | None:
    info = builder.inspect_raw(name)
    if info is None:
        return None
    parts = (info.get("Os"), info.get("Architecture"), info.get("Variant"))
    return normalize_platform("/".join(str(p) for p in parts if p))


def image_exists_for(builder: DockerBuilder, name: str, pull_from_repo: bool, platform: str) -> bool:
    """``image_exists`` for a requested platform (or several): a local image of another
    platform does not count; a registry index lacking one of them is absent."""
    platforms = split_platforms(platform)
    wanted = [normalize_platform(p) for p in platforms]
    if len(wanted) == 1 and _local_platform(builder, name) == wanted[0]:
        return True
    if not pull_from_repo:
        return False
    ref = parse_reference(name)
    if not has_platforms(RegistryClient(insecure_registries=builder.insecure_registries), ref, platforms):
        get_reporter().event("not_found", image=name, registry=ref.registry, platform=platform)
        return False
    if len(wanted) > 1:
        return True  # one local tag holds one platform: the registry's answer is the answer
    from .engine import cli_env

    env = cli_env(builder.docker_host)  # the engine rtbuild inspects afterwards
    cli = builder.client().cli
    get_reporter().event("pull_started", image=name, platform=platforms[0], message=f"pulling {name} ({platform})")
    try:
        proc = subprocess.run(
            [cli, "pull", "-q", "--platform", platforms[0], name],
            capture_output=True,
            text=True,
            timeout=PULL_TIMEOUT_S,
            env={**os.environ, **env},
        )
    except subprocess.TimeoutExpired as exc:  # run() has killed the client by now
        tail = (exc.stderr or b"").decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise RegistryError(
            f"pulling {name} for {platforms[0]} did not finish within {PULL_TIMEOUT_S} s",
            step="pull image",
            log_tail=tail.strip().splitlines()[-10:],
            hint="check the engine's connection to the registry (a proxy, a stalled mirror), then run again",
        ) from exc
    if proc.returncode != 0:
        raise RegistryError(
            f"pulling {name} for {platforms[0]} failed: {proc.stderr.strip()[-300:]}",
            step="pull image",
            log_tail=proc.stderr.strip().splitlines()[-10:],
            hint="the registry lists the platform; check the engine can reach the registry",
        )
    return _local_platform(builder, name) == wanted[0]


__all__ = ["PLATFORMS", "build_platforms", "image_exists_for", "is_multi", "plan_text", "warn_foreign_base_images"]
