"""The no-op check's inputs, and a first build at engine speed.

:func:`inputs_and_context` computes a build's input digest (context, Dockerfile, args,
base image IDs). :func:`first_build` runs when no tag of the request exists yet: then no
image can be reused, so the engine starts at once and the digest is hashed alongside
(:class:`rtbuild.enginekit.ConcurrentDigest`), recorded beside the image afterwards
only when it is provably the image's.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

from rtbuild import get_reporter
from rtbuild.enginekit import (
    DIGEST_LABEL,
    RECORDED,
    Inputs,
    analyse_cached,
    compute_inputs,
    report_skip_disabled,
)

from .engine import EngineAPI

if TYPE_CHECKING:
    from rtbuild.enginekit import Analysis

    from .builder import DockerBuilder
    from .spec import BuildOutcome, BuildSpec


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def inputs_and_context(
    builder: DockerBuilder, spec: BuildSpec, extra: list[str], dockerfile: str, api: EngineAPI | None = None
) -> tuple[Inputs | None, Any]:
    """See :meth:`DockerBuilder.inputs_and_context`; ``api`` may hold prefetched answers."""
    from rtbuild.context import context_digest, resolved_inside

    ctx = context_digest(spec.path, extra, flavor=builder.ignore_flavor())
    dockerfile_text = read_text(dockerfile)
    analysis = analyse_cached(dockerfile_text, spec.build_args, spec.platform)
    reasons = list(analysis.remote)
    if not ctx.ignore_exact:
        reasons.append(".dockerignore syntax this client reads as a regular expression")
    if os.path.lexists(dockerfile + ".dockerignore"):
        # BuildKit's client sends the context filtered by it instead of .dockerignore (the
        # legacy builder does not): which of the two applies depends on the engine path.
        reasons.append(f"{os.path.basename(dockerfile)}.dockerignore, a Dockerfile-specific ignore file")
    ignore = os.path.join(spec.path, ".dockerignore")
    if os.path.islink(ignore) and resolved_inside(spec.path, ignore) is None:
        # BuildKit's client ignores it (seen with 20.10), the digest would apply it.
        reasons.append(".dockerignore, a symlink out of the context")
    if reasons:
        report_skip_disabled(reasons)
        return None, ctx
    api = api or EngineAPI(builder.docker_host)
    from rtbuild.enginekit import foreign_bases

    inspector, foreign = foreign_bases(
        api,
        analysis.images,
        spec.platform,
        dockerfile_text=dockerfile_text,
        insecure_registries=builder.insecure_registries,
    )
    if foreign:
        report_skip_disabled(foreign)
        return None, ctx
    inputs = compute_inputs(
        context_digest=ctx.digest,
        dockerfile_text=dockerfile_text,
        build_args=spec.build_args,
        labels=spec.labels,
        platform=spec.platform,
        target=spec.target,
        extra_build_args=spec.extra_build_args,
        api=inspector,
        analysis=analysis,
    )
    if inputs is not None:
        inputs.files, inputs.bytes_hashed, inputs.cache_hits = ctx.files, ctx.bytes_hashed, ctx.cache_hits
        inputs.linked = ctx.linked
    return inputs, ctx


def first_build(
    builder: DockerBuilder, spec: BuildSpec, extra: list[str], dockerfile: str, analysis: Analysis, started: float
) -> BuildOutcome | None:
    """The engine build with the digest hashed alongside, recorded beside the image when
    it is the image's. ``None`` when the context is not settled (a file written in the
    last 2 s): then the caller hashes first and labels the image, as for any build. Also
    ``None``, with the tags removed again, when the hash found a change BuildKit's
    incremental sync does not send: the engine may have built from old bytes.
    ``analysis`` is the caller's analysis of the Dockerfile (its base images, what it
    fetches that the digest cannot see)."""
    from rtbuild.enginekit import ConcurrentDigest, ContextTransferWatch, has_foreign_base

    if has_foreign_base(EngineAPI(builder.docker_host), analysis.images, spec.platform):
        # Its image is read from the registry, which the engine may do before the digest's
        # own look-up: the digest is taken first, so a base that moves in between is newer
        # than the label says (built again next time), never older.
        return None

    from .enginebuild import engine_build

    def images() -> dict[str, str]:
        answers = EngineAPI(builder.docker_host).inspect_images(analysis.images)
        return {name: str(info.get("Id", "")) for name, info in answers.items() if info}

    unsynced: list[str] = []

    def compute() -> Inputs | None:
        inputs, ctx = inputs_and_context(builder, spec, extra, dockerfile)
        if ctx is not None and ctx.stat_invisible:
            # BuildKit's incremental sync may have kept an old copy of these files: this
            # image is not kept (below), and the build after it sends the whole context
            # (the walk that saw them left the marker, rtbuild.context.mark_stale_sync).
            unsynced.extend(ctx.stat_invisible)
            return None
        return inputs

    concurrent = ConcurrentDigest(spec.path, dockerfile, compute, images)
    if not concurrent.settled():
        return None
    # The hash waits for the engine to have the context: while its client sends it, client
    # and engine keep both CPUs of a small host busy (see ConcurrentDigest.start).
    concurrent.start(until_context_sent=True)
    transfer = ContextTransferWatch(concurrent.context_sent)
    try:
        # The label says "see the record" (the digest is not known yet); the digest
        # itself leaves this label out, so the hash does not depend on it. A Dockerfile
        # that fetches what the digest cannot see (ADD <url>, a # syntax frontend) never
        # gets a record, so its image gets no such label either.
        marked = spec if analysis.remote else dataclasses.replace(spec, labels={**spec.labels, DIGEST_LABEL: RECORDED})
        outcome = engine_build(
            builder, marked, extra, None, started, on_started=concurrent.engine_started, on_line=transfer.feed
        )
    except BaseException:
        concurrent.abandon()
        raise
    inputs = concurrent.finish(outcome.image_id)
    unreadable = concurrent.unreadable()
    if unreadable is not None:
        # BuildKit's client sent what it could not read as an empty file, or left it out:
        # the tags (none existed before a first build) must not name that image.
        from .enginebuild import _remove_tags

        _remove_tags(EngineAPI(builder.docker_host), spec.tags)
        raise unreadable
    reporter = get_reporter()
    if unsynced:
        # The engine started before the hash could say so: it received these entries
        # incrementally and may hold their old bytes. Drop the tags (none existed before)
        # and let the caller build again, hashing first: that build sends every file.
        from .enginebuild import _remove_tags

        _remove_tags(EngineAPI(builder.docker_host), spec.tags)
        shown = ", ".join(unsynced[:3]) + (f" and {len(unsynced) - 3} more" if len(unsynced) > 3 else "")
        reporter.event(
            "fresh_sync_rebuild",
            files=unsynced[:100],
            message=f"building again with the whole context: {shown} changed in a way the engine's"
            " incremental sync does not send (same size and mtime, or attributes only)",
        )
        return None
    if inputs is not None:
        outcome.input_digest = inputs.digest
        reporter.event(
            "digest_recorded", input_digest=inputs.digest, image_id=outcome.image_id, hash_began=concurrent.began
        )
    else:
        reason = concurrent.reason
        reporter.event("digest_not_recorded", reason=reason, message=f"no input digest kept: {reason}")
    outcome.duration_s = round(time.perf_counter() - started, 3)
    return outcome


__all__ = ["first_build", "inputs_and_context", "read_text"]
