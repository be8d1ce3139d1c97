"""One request through ``podman build``: the no-op skip, the command, live progress, errors,
and multi-platform requests as one build per platform plus a registry index."""

from __future__ import annotations

import functools
import os
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import rtbuild
from rtbuild import BuildFailedError, BuildRequest, BuildResult, ConfigError
from rtbuild.context import context_digest, validate_context
from rtbuild.enginekit import (
    DIGEST_LABEL,
    Inputs,
    Redactor,
    StepRecorder,
    analyse_cached,
    assemble_indexes,
    build_args_in,
    build_each_platform,
    build_error,
    compute_inputs,
    confirm_label,
    foreign_bases,
    indexes_current,
    log_path_for,
    native_platform,
    plan_platforms,
    platform_args,
    refuse_result_args,
    report_skip_disabled,
    rotate_logs,
    run_build,
    secrets_in_args,
    skip_blocked,
    split_platforms,
    warn_secret_args,
)

from .auth import find_credentials
from .baseauth import (
    base_authfile,
    broken_auth_file,
    creds_passwords,
    image_registries,
    proxy_passwords,
    refused_pull,
    shown_argv,
)
from .leftovers import MARK_ARG, owned_tmpdir, remove_leftovers, sweep_and_report, tmp_base, unmark
from .retag import reuse_current
from .secretfds import env_secrets_in_memory
from .stages import stage_as_written, stage_case_error

if TYPE_CHECKING:
    from rtbuild.enginekit import PlatformPlan

    from .builder import PodmanBuilder

_QEMU_HINT = (
    "a foreign platform needs QEMU user emulation: install qemu-user-static and binfmt-support and register"
    " the handlers with the F flag (`sudo bash scripts/podman.sh` in this repo; docs/multi-platform.md)"
)

#: Podman pulls a name without a registry only through registries.conf; Docker means docker.io.
_SHORT_NAME_HINT = (
    "Podman resolves an image name without a registry only through `unqualified-search-registries` (or an"
    " alias) in /etc/containers/registries.conf, where Docker assumes docker.io: name the registry in FROM"
    ' (e.g. docker.io/ORG/IMAGE:TAG), add `unqualified-search-registries = ["docker.io"]` there, or pull the'
    " base first with `rtbuild exists IMAGE --builder podman`"
)


def _without_file(extra: list[str]) -> list[str]:
    """``extra`` without ``-f``/``--file`` in every spelling the core reads
    (:func:`rtbuild.context.dockerfile_args`: ``-f X``, ``--file X``, ``--file=X``, ``-f=X``,
    ``-fX``): the Dockerfile is passed resolved. Podman builds every ``-f`` it is given, one
    after the other, and reads a relative one from the working directory first."""
    out: list[str] = []
    skip = False
    for index, arg in enumerate(extra):
        if skip:
            skip = False
        elif arg in ("-f", "--file") and index + 1 < len(extra):
            skip = True
        elif not (arg.startswith("--file=") or (arg.startswith("-f") and arg != "-f")):
            out.append(arg)
    return out


def build_args_of(request: BuildRequest) -> dict[str, str]:
    """The build args podman builds with: the request's, then those of the extra arguments,
    which podman reads last (``--build-arg K=V``, and ``--build-arg K`` with ``K``'s value
    in its environment, rtbuild's)."""
    return {**request.build_args, **build_args_in(request.extra_build_args, os.environ)}


def resolving(request: BuildRequest, build_args: dict[str, str]) -> dict[str, str]:
    """``build_args`` as the FROM lines see them: Buildah fills TARGETARCH & co. for the
    request's platform, else this machine's (a plain ``podman build`` of ``FROM base:${TARGETARCH}``
    pulls base:amd64 here), where the analysis, given no platform, left them empty."""
    return {**platform_args(request.platform or native_platform()), **build_args}


def redactor_for(request: BuildRequest) -> Redactor:
    """Masks secret-looking build-arg values and ``--secret`` contents in every line rtbuild
    keeps or shows. Reading the secrets here also makes a missing source (unset env=, absent
    src=) a usage error before podman runs, as on Docker."""
    args = build_args_of(request)
    warn_secret_args(args)
    values = [secret.value() for secret in request.secrets]
    extra = request.extra_build_args
    passwords = [*creds_passwords(extra), *proxy_passwords(extra)]
    return Redactor.for_build(args, [*values, *secrets_in_args(extra), *map(str.encode, passwords)])


def dockerfile_of(request: BuildRequest) -> str:
    """The request's Dockerfile as an absolute path (validated, before any engine contact)."""
    extra = list(request.extra_build_args)
    refuse_result_args(extra, output=False)  # podman's --output exports files beside the image
    if request.dockerfile:  # with any -f in extra: validate_context refuses two different ones
        extra = ["-f", request.dockerfile, *extra]
    found = validate_context(request.path, extra)
    if found == "-":
        raise ConfigError(
            "podman builds need a Dockerfile file, not stdin",
            step="validate request",
            hint="write the Dockerfile to a file and name it with -f/--file",
        )
    return os.path.abspath(found)


def _flags(request: BuildRequest) -> list[str]:
    """Request fields that reach podman as flags and count as digest inputs."""
    flags = ["--no-cache"] if request.no_cache else []
    for secret in request.secrets:
        flags += ["--secret", secret.flag()]
    return flags + _without_file(list(request.extra_build_args))


def _tls_args(builder: PodmanBuilder, request: BuildRequest, dockerfile: str) -> list[str]:
    """``--tls-verify=false`` when every registry the Dockerfile takes images from is a
    loopback or insecure one (as for exists/pull/push). The flag covers every registry of
    the build, so it is never given while one image comes from a verified registry."""
    if any(arg.startswith("--tls-verify") for arg in request.extra_build_args):
        return []  # the user's own choice
    registries = image_registries(dockerfile, resolving(request, request.build_args), request.platform)
    if None in registries:  # a name podman will reject anyway: count it as verified
        return []
    if registries and not any(builder.podman.tls_verify(registry) for registry in registries if registry):
        return ["--tls-verify=false"]
    return []


def argv_for(
    builder: PodmanBuilder, request: BuildRequest, tags: list[str], dockerfile: str, labels: dict[str, str]
) -> list[str]:
    argv = [builder.podman.cli, "build", f"--layers={str(builder.layers).lower()}", "--format", builder.format]
    argv += ["-f", dockerfile]
    for tag in tags:
        argv += ["-t", tag]
    if request.platform:
        argv += ["--platform", request.platform]
    argv += _tls_args(builder, request, dockerfile)
    for key, value in request.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in {**request.labels, **labels}.items():
        argv += ["--label", f"{key}={value}"]
    if request.target:
        argv += ["--target", stage_as_written(dockerfile, request)]
    return [*argv, *_flags(request), request.path]


def _inputs(
    builder: PodmanBuilder, request: BuildRequest, tags: list[str], dockerfile: str
) -> tuple[Inputs | None, Any]:
    """The request's input digest (``None``: the skip cannot be trusted for it) and the
    context hash it was made from."""
    with open(dockerfile, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    analysis = analyse_cached(text, resolving(request, request.build_args), request.platform)
    reasons = list(analysis.remote)
    # Podman prefers these to .dockerignore, which is all the digest reads.
    for ignore in (
        os.path.join(request.path, ".containerignore"),
        dockerfile + ".containerignore",
        dockerfile + ".dockerignore",
    ):
        if os.path.lexists(ignore):
            reasons.append(os.path.basename(ignore))
    flavor = None
    if os.path.lexists(os.path.join(request.path, ".dockerignore")):
        # Buildah filters the context with its own matcher, not docker 23's (the default).
        flavor = builder.podman.ignore_flavor()
        if flavor is None:
            reasons.append(f".dockerignore as podman {builder.podman.version() or '(unknown version)'} reads it")
    if reasons:
        report_skip_disabled(reasons)
        return None, None
    ctx = context_digest(request.path, ["-f", dockerfile], flavor=flavor)
    if not ctx.ignore_exact:
        report_skip_disabled([".dockerignore syntax Buildah reads as a regular expression"])
        return None, None
    # One podman call for every base image and tag the check will look at.
    builder.podman.prefetch([*analysis.images, *tags])
    # A base here for another platform only: Buildah pulls the requested platform's image.
    inspector, foreign = foreign_bases(
        builder.podman,
        analysis.images,
        request.platform,
        dockerfile_text=text,
        insecure_registries=builder.insecure_registries,
        credentials=find_credentials,
    )
    if foreign:
        report_skip_disabled(foreign)
        return None, ctx
    inputs = compute_inputs(
        context_digest=ctx.digest,
        dockerfile_text=text,
        build_args=request.build_args,
        labels=request.labels,
        platform=request.platform,
        target=request.target,
        extra_build_args=["--format", builder.format, f"--layers={builder.layers}", *_flags(request)],
        api=inspector,
        analysis=analysis,
    )
    if inputs is not None:
        inputs.files, inputs.bytes_hashed, inputs.cache_hits = ctx.files, ctx.bytes_hashed, ctx.cache_hits
    return inputs, ctx


def build_one(
    builder: PodmanBuilder, request: BuildRequest, tags: list[str], dockerfile: str, redact: Redactor | None = None
) -> dict[str, Any]:
    """One platform (or the native one): skip when nothing changed, else ``podman build``.
    ``redact`` masks secrets in its output (:func:`redactor_for`)."""
    reporter = rtbuild.get_reporter()
    inputs: Inputs | None = None
    ctx: Any = None
    blocked = skip_blocked(_flags(request))
    if builder.skip_unchanged and blocked is None:
        inputs, ctx = _inputs(builder, request, tags, dockerfile)
        if inputs is not None and not request.force:
            reused = reuse_current(tags, inputs.digest, builder.podman)  # tags a build would add: tagged
            if reused is not None:
                image_id, moved = reused
                tagged = f"; tagged {', '.join(moved)}" if moved else ""
                message = f"no input changed: reusing {tags[0]} (podman build skipped{tagged})"
                reporter.event("cached", image=tags[0], image_id=image_id, input_digest=inputs.digest, message=message)
                return builder.details(image_id=image_id, cached=True, input_digest=inputs.digest)
    elif blocked:
        report_skip_disabled([blocked], given=True)
    labels = {DIGEST_LABEL: inputs.digest} if inputs is not None else {}
    argv = argv_for(builder, request, tags, dockerfile, labels)
    log_dir = builder.log_directory()
    rotate_logs(log_dir, keep=builder.log_keep, max_age_days=builder.log_max_age_days)
    log_path = log_path_for(log_dir, tags[0])
    # Secrets reach podman as id/src/env names; it reads the values itself.
    recorder = StepRecorder()  # the step profile (rtbuild build --profile, rtbuild metrics)
    mask = redact if redact is not None else redactor_for(request)
    marker = uuid.uuid4().hex  # names this build's working containers (see .leftovers)
    argv = [*argv[:-1], "--build-arg", f"{MARK_ARG}={marker}", argv[-1]]
    # A TMPDIR of its own: Buildah's temp dirs (RUN bundles) go with it, even when podman is
    # stopped mid-RUN. Where Buildah would put them (TMPDIR, else /var/tmp: not a tmpfs).
    base = tmp_base()
    sweep_and_report(builder.podman, base)
    with owned_tmpdir(base, marker) as tmpdir:
        try:
            # Podman's own lookup skips credsStore helpers (and more): the bases' registries
            # get rtbuild's credentials in memory, as exists/pull do.
            with (
                base_authfile(request, dockerfile, resolving(request, build_args_of(request))) as (auth, fds),
                env_secrets_in_memory(argv) as (engine_argv, secret_fds),
            ):
                argv = [*argv[:-1], *auth, argv[-1]]
                result = run_build(
                    [*engine_argv[:-1], *auth, engine_argv[-1]],
                    env={"TMPDIR": tmpdir},
                    log_path=log_path,
                    stream=builder.progress == "plain",
                    on_line=recorder.feed,
                    redact=lambda line: unmark(mask(line)),
                    shown_argv=shown_argv(argv),
                    pass_fds=(*fds, *secret_fds),
                )
        except BaseException:
            remove_leftovers(builder.podman, tmpdir, marker)
            raise
        if result.returncode != 0:
            remove_leftovers(builder.podman, tmpdir, marker)
    builder.podman.forget()
    if result.returncode != 0:
        refused = refused_pull(result.lines, log_path) or broken_auth_file(result.lines, log_path)
        if refused is not None:
            raise refused
        error = build_error(result.lines, result.returncode, log_path=log_path, engine="podman")
        if any("exec format error" in line for line in result.lines):
            error = BuildFailedError(
                f"{error} (platform {request.platform or 'native'}: the engine cannot run its binaries)",
                step=error.step,
                log_tail=error.log_tail,
                log_path=log_path,
                hint=_QEMU_HINT,
            )
        elif any("did not resolve to an alias" in line for line in result.lines):
            error = BuildFailedError(
                error.message, step=error.step, log_tail=error.log_tail, log_path=log_path, hint=_SHORT_NAME_HINT
            )
        error = stage_case_error(result.lines, dockerfile, request, error) or error
        raise error
    if request.platform and "," not in request.platform and dockerfile != "-":
        from .images import warn_foreign_base_images

        warn_foreign_base_images(builder, request, dockerfile)
    input_digest = inputs.digest if inputs else None
    untag = functools.partial(_remove_tags, builder, tags)
    if input_digest and confirm_label(ctx, result.image_id, input_digest, untag=untag) is not None:
        input_digest = None  # the label was withdrawn: the context changed after the hash
    return builder.details(
        image_id=result.image_id,
        cached=False,
        input_digest=input_digest,
        log_path=log_path,
        steps=recorder.steps(),
    )


def run_request(builder: PodmanBuilder, request: BuildRequest) -> BuildResult:
    started = time.perf_counter()
    if not request.tags:
        raise ConfigError("a build needs at least one tag", step="validate request", hint="pass -t NAME:TAG")
    dockerfile = dockerfile_of(request)
    redact = redactor_for(request)
    # Inspect answers serve one request: a builder kept by a BuildSession (or a platform's
    # own) saw a base re-tagged since its last skip as the old image, and skipped again.
    builder.podman.forget()
    # The extra --build-arg K=V (podman reads them last) count as the request's: the FROM
    # lines they resolve name the bases whose IDs are inputs (a re-tagged one went unseen).
    request = replace(request, build_args={**request.build_args, **build_args_in(request.extra_build_args)})
    platforms = split_platforms(request.platform)
    if len(platforms) < 2:
        one = build_one(builder, request, list(request.tags), dockerfile, redact)
        cached = bool(one.pop("cached"))
        return BuildResult(
            image=request.tags[0],
            tags=list(request.tags),
            builder=builder.name or "podman",
            duration_s=round(time.perf_counter() - started, 3),
            cached=cached,
            details={**one, "client": builder.podman.cli},
        )
    push = bool(request.push)

    def build(plan: PlatformPlan) -> dict[str, Any]:
        return build_one(builder, replace(request, platform=plan.platform), plan.tags, dockerfile, redact)

    current: dict[str, str] = {}
    registry: dict[str, Any] = {"insecure_registries": builder.insecure_registries, "credentials": find_credentials}

    def unchanged(done: dict[str, dict[str, Any]]) -> bool:
        current.update(indexes_current(request.tags, done, **registry) or {})
        return bool(current)

    plans = plan_platforms(request.tags, platforms, push=push)
    per_platform = build_each_platform(plans, build, builder.podman.push, unchanged)
    details: dict[str, Any] = {"platforms": per_platform, "client": builder.podman.cli}
    if push:
        details["index_digests"] = current or assemble_indexes(
            request.tags, platforms, per_platform=per_platform, **registry
        )
        details["pushed"] = True
        details["registry_current"] = bool(current)
    return BuildResult(
        image=request.tags[0],
        tags=list(request.tags),
        builder=builder.name or "podman",
        duration_s=round(time.perf_counter() - started, 3),
        cached=all(one.get("cached") for one in per_platform.values()) and (not push or bool(current)),
        details=details,
    )


def _remove_tags(builder: PodmanBuilder, tags: list[str]) -> None:
    """Take ``tags`` off the image they name; raises when podman refuses."""
    proc = builder.podman.run("untag", tags[0], *tags, timeout=120)
    if proc.returncode != 0:
        raise rtbuild.AgentRuntimeBuildError(
            f"podman untag failed: {(proc.stderr.strip().splitlines() or ['(no output)'])[-1][:300]}",
            step="remove tags",
            hint=f"remove them with `podman untag {' '.join(tags)}`",
        )


__all__ = ["argv_for", "build_one", "dockerfile_of", "run_request"]
