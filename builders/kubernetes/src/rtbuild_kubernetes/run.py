"""One build request through the cluster: no-op check, context, credentials, Job(s),
manifest list. Called by :meth:`KubernetesBuilder.build_request`."""

from __future__ import annotations

import base64
import contextvars
import json
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from rtbuild import BuildRequest, get_reporter

if TYPE_CHECKING:
    from .builder import KubernetesBuilder
    from .context_tar import ContextTar
    from .jobrun import JobOutcome, JobRun
    from .registry_ops import RegistryOps

#: How long, after a cancel, the other platforms' threads get to finish their clean-up.
CANCEL_WAIT_S = 20.0
#: After a failure, how long beyond terminationGracePeriodSeconds the build's pods get to stop
#: before the temporary tags are removed; then the removal's own limit.
STOP_MARGIN_S = 15.0
DISCARD_S = 30.0
#: After Ctrl-C or SIGTERM, the removal's whole limit (the pods are not waited for).
INTERRUPTED_DISCARD_S = 5.0


class RegistryInspector:
    """The no-op skip's view of images, from the registry: ``{"Id", "Config": {"Labels"}}``
    in the shape of an engine's inspect (the image ID is the config digest, as Docker's).

    With several platforms the ID names the config of every one of them, so a base image
    whose entry changed for any requested platform (variant included) changes the input
    digest; one platform missing makes the image absent (the build runs)."""

    def __init__(self, ops: RegistryOps, platform: str | list[str] | None) -> None:
        self.ops = ops
        self.platforms: list[str | None] = [platform] if not isinstance(platform, list) else list(platform) or [None]

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        found = [self.ops.image_config(name, platform) for platform in self.platforms]
        if any(item is None for item in found):
            return None
        configs = [item for item in found if item is not None]
        image_id = configs[0][0]
        if len(configs) > 1:
            image_id = ",".join(f"{p}={c[0]}" for p, c in zip(self.platforms, configs, strict=True))
        return {"Id": image_id, "Config": configs[0][1].get("config") or {}}


class TagInspector(RegistryInspector):
    """The no-op skip's view of a tag for one platform: its image for that platform, ``None``
    when there is none or the image is another platform's (a single-platform image pushed
    over a multi-platform tag: ``docker pull`` and ``docker push`` keep its label)."""

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        platform = self.platforms[0]
        found = self.ops.image_config(name, platform)
        if found is None or (platform and not _config_is(found[1], platform)):
            return None
        return {"Id": found[0], "Config": found[1].get("config") or {}}


def _config_is(config: dict[str, Any], platform: str) -> bool:
    """Whether an image config is for ``platform`` (os and architecture; the variant when both
    name one). A config naming neither is taken as the index says."""
    from rtbuild.oci import normalize_platform

    parts = [str(config.get(key) or "") for key in ("os", "architecture", "variant")]
    if not parts[0] or not parts[1]:
        return True
    offered = normalize_platform("/".join(part for part in parts if part)).split("/")
    wanted = normalize_platform(platform).split("/")
    return offered[:2] == wanted[:2] and (len(offered) < 3 or len(wanted) < 3 or offered[2] == wanted[2])


def tags_current(ops: RegistryOps, tags: list[str], digest: str, platforms: list[str]) -> str | None:
    """The image ID when every tag holds, for **every** requested platform, an image of that
    platform carrying ``digest``: an index with one platform missing, or whose entry for one
    platform is another build's, is not current (the build runs)."""
    from rtbuild.enginekit import all_tags_current

    image_id: str | None = None
    for platform in list[str | None](platforms) or [None]:
        found = all_tags_current(tags, digest, TagInspector(ops, platform))
        if found is None:
            return None
        image_id = image_id or found
    return image_id


def target_platforms(builder: KubernetesBuilder, request: BuildRequest) -> list[str]:
    """The platforms the skip reads base images and tags for: the requested ones; without
    ``--platform``, ``linux/ARCH`` when ``node_selector`` pins ``kubernetes.io/arch`` (the pod
    builds on such a node), else none (the registries' default, linux/amd64: the Job then
    pins the pod to amd64 nodes, see manifests)."""
    selector = builder.settings.node_selector
    arch = selector.get("kubernetes.io/arch") or selector.get("beta.kubernetes.io/arch")
    return request.platforms() or ([f"linux/{arch}"] if arch else [])


def _inputs(builder: KubernetesBuilder, request: BuildRequest, ops: RegistryOps) -> tuple[Any, Any]:
    """The Docker backend's input digest (``rtbuild.enginekit``), base images resolved in
    their registries (``None`` when the skip is off or a base image is not there), and the
    context hash it was made from."""
    from rtbuild.context import context_digest, validate_context
    from rtbuild.enginekit import analyse_cached, compute_inputs, report_skip_disabled, skip_blocked

    if not builder.settings.skip_unchanged or request.no_cache or skip_blocked(request.extra_build_args):
        return None, None
    extra = ["-f", request.dockerfile] if request.dockerfile else list(request.extra_build_args)
    dockerfile = validate_context(request.path, extra)
    with open(dockerfile, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    remote = analyse_cached(text, request.build_args, request.platform).remote
    if remote:
        report_skip_disabled(remote)
        return None, None
    platforms = target_platforms(builder, request)
    ctx = context_digest(request.path, extra)
    inputs = compute_inputs(
        context_digest=ctx.digest,
        dockerfile_text=text,
        build_args=request.build_args,
        labels=request.labels,
        platform=request.platform,
        target=request.target,
        extra_build_args=request.extra_build_args,
        api=RegistryInspector(ops, list(platforms)),
    )
    return inputs, ctx


def dockerconfigjson(registries: list[str]) -> bytes | None:
    """A ``.dockerconfigjson`` with this machine's credentials for ``registries`` (None: none)."""
    from rtbuild.oci import get_credentials

    auths: dict[str, dict[str, str]] = {}
    for registry in registries:
        creds = get_credentials(registry)
        if creds is None:
            continue
        if creds.identity_token:
            auths[registry] = {"identitytoken": creds.identity_token}
        elif creds.password is not None:
            pair = f"{creds.username or ''}:{creds.password}".encode()
            auths[registry] = {"auth": base64.b64encode(pair).decode("ascii")}
    return json.dumps({"auths": auths}).encode() if auths else None


def _upload_to_registry(builder: KubernetesBuilder, request: BuildRequest, tar: ContextTar, ops: RegistryOps) -> str:
    """Push the context tar as a one-layer artifact (skipped when the blob is there);
    its reference by digest."""
    import hashlib

    from rtbuild.oci import parse_reference

    from .registry_ops import OCI_MANIFEST

    repo = builder._context_repository(request)
    ref = parse_reference(repo)
    with open(tar.path, "rb") as stream:
        uploaded = ops.upload_blob(ref, tar.digest, stream, tar.size)
    config = b"{}"
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    if not ops.blob_exists(ref, config_digest):
        import io

        ops.upload_blob(ref, config_digest, io.BytesIO(config), len(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": len(config),
            "digest": config_digest,
        },
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": tar.size, "digest": tar.digest}],
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    digest = ops.put_manifest(ref, "sha256:" + hashlib.sha256(body).hexdigest(), OCI_MANIFEST, body)
    get_reporter().event(
        "k8s_context_blob",
        digest=tar.digest,
        uploaded=uploaded,
        message=f"context {'uploaded to' if uploaded else 'already in'} {ref.registry}/{ref.repository}",
    )
    return f"{ref.registry}/{ref.repository}@{digest}"


def run_all(runs: list[JobRun]) -> list[JobOutcome]:
    """Every Job of a build, in parallel; the first failure, Ctrl-C or SIGTERM cancels
    the others at once (their Jobs and Secrets deleted) and is raised.

    The workers are daemon threads and the caller waits on a queue with a timeout, so an
    interrupt reaches this thread within a fraction of a second (a thread pool's map would
    hold it until every Job finished)."""
    if len(runs) == 1:
        return [runs[0].run()]
    for run in runs:  # the platforms' logs interleave: each line says whose it is
        run.line_prefix = f"[{run.plan.platform}] "
    answers: queue.Queue[tuple[int, Any]] = queue.Queue()

    def work(index: int, run: JobRun) -> None:
        try:
            answers.put((index, run.run()))
        except BaseException as exc:  # handed to the caller's thread
            answers.put((index, exc))

    threads = [
        # Each thread runs in a copy of this context: the reporter (live log, Job events)
        # and the build's deadline are context variables.
        threading.Thread(
            target=contextvars.copy_context().run, args=(work, i, run), name=f"job-{run.plan.job_name}", daemon=True
        )
        for i, run in enumerate(runs)
    ]
    for thread in threads:
        thread.start()
    outcomes: dict[int, JobOutcome] = {}
    try:
        while len(outcomes) < len(runs):
            try:
                index, answer = answers.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(answer, BaseException):
                raise answer
            outcomes[index] = answer
    except BaseException as exc:
        if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: the clean-ups do not wait out an outage
            for run in runs:
                run.client.stopping = True
        for run in runs:
            run.cancel()
        ends = time.monotonic() + CANCEL_WAIT_S
        for thread in threads:
            thread.join(max(0.0, ends - time.monotonic()))
        raise
    return [outcomes[i] for i in range(len(runs))]


def discard_pushed_tags(builder: KubernetesBuilder, ops: RegistryOps, runs: list[JobRun], error: BaseException) -> None:
    """A multi-platform build failed with ``error``: the temporary tags its Jobs pushed are
    removed (:func:`.index.discard_temporary_tags`; a removal that fails is one warning, and
    the caller raises ``error`` all the same).

    After a failure (an ``Exception``) the build's pods first get terminationGracePeriodSeconds
    plus :data:`STOP_MARGIN_S` to stop: a cancelled Job's pod may be pushing at that moment
    and would put its tag back after the removal. After Ctrl-C or SIGTERM (``KeyboardInterrupt``,
    ``SystemExit``) rtbuild exits at once instead: one attempt of at most
    :data:`INTERRUPTED_DISCARD_S` removes the tags pushed so far, without waiting for the pods,
    so a platform whose push was under way at that instant can still leave its tag."""
    from .index import discard_temporary_tags

    tags = [run.plan.tags[0] for run in runs]
    if not isinstance(error, Exception):
        discard_temporary_tags(ops, tags, INTERRUPTED_DISCARD_S)
        return
    wait_s = builder.settings.termination_grace_period_seconds + STOP_MARGIN_S

    def settle() -> list[str]:
        deadline = time.monotonic() + wait_s
        waiting = list(runs)
        while waiting:
            try:
                waiting = [run for run in waiting if not run.pods_stopped()]
            except Exception:  # the cluster does not answer: the tags pushed so far still go
                break
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        return [run.plan.tags[0] for run in waiting]

    discard_temporary_tags(ops, tags, wait_s + DISCARD_S, settle)


def run_build(builder: KubernetesBuilder, request: BuildRequest, build_id: str) -> dict[str, Any]:
    from rtbuild.enginekit import DIGEST_LABEL, confirm_label

    from .context_tar import check_fits_workspace, sweep_context_tars, write_context_tar
    from .jobrun import JobRun

    sweep_context_tars()  # what killed rtbuild runs left in $TMPDIR
    reporter = get_reporter()
    ops = builder.registry()
    labels = dict(request.labels)
    inputs, ctx = _inputs(builder, request, ops)
    # build-many: entries sharing a tag push it once (the Job pushes: the core's rule never saw it).
    key = _batch_key(inputs, target_platforms(builder, request))
    if inputs is not None:
        labels[DIGEST_LABEL] = inputs.digest
        if not request.force:
            from rtbuild.enginekit import pushed_in_batch, record_batch_push

            if pushed_in_batch(request.tags, key) is not None:  # no Job, no registry read
                return {"cached": True, "input_digest": inputs.digest, "pushed": True}
            image_id = tags_current(ops, request.tags, inputs.digest, target_platforms(builder, request))
            if image_id is not None:
                record_batch_push(request.tags, key)
                reporter.event(
                    "cached",
                    image=request.tags[0],
                    image_id=image_id,
                    input_digest=inputs.digest,
                    message=f"no input changed: {request.tags[0]} is in the registry (no Job created)",
                )
                return {"cached": True, "image_id": image_id, "input_digest": inputs.digest, "pushed": True}
    from rtbuild.enginekit import warn_secret_args

    from .buildargs import SECRET_ADVICE, SECRET_HANDLING, secret_names

    plans = builder._plans(request, build_id, labels)
    warn_secret_args(plans[0].build_args, handling=SECRET_HANDLING, advice=SECRET_ADVICE)
    secret = dockerconfigjson(builder._registries(request))
    if secret is None and secret_names(plans[0].build_args):
        secret = json.dumps({"auths": {}}).encode()  # the Secret carries the build args alone
    tar = write_context_tar(request.path, plans[0].dockerfile)
    try:
        check_fits_workspace(tar, builder.settings.limits.get("ephemeral-storage"))
        # The tar is what the Job builds: written after the hash, it may hold other bytes.
        if inputs is not None and confirm_label(ctx, None, inputs.digest, before_build=True) is not None:
            inputs = None
            labels.pop(DIGEST_LABEL, None)
            plans = builder._plans(request, build_id, labels)
        client = builder.client()
        if builder.settings.transport == "registry":
            context_ref = _upload_to_registry(builder, request, tar, ops)
            for plan in plans:
                plan.context_ref = context_ref
        for plan in plans:
            plan.namespace = client.namespace
            if secret is not None:
                plan.secret_name = f"{plan.job_name}-push"
        upload = tar if builder.settings.transport == "exec" else None
        runs = [JobRun(client, builder.settings, plan, context=upload, dockerconfigjson=secret) for plan in plans]
        try:
            outcomes = run_all(runs)
        except BaseException as exc:
            if len(runs) > 1:
                discard_pushed_tags(builder, ops, runs, exc)
            raise
    finally:
        tar.remove()
    details: dict[str, Any] = {
        "pushed": True,
        "jobs": [o.job for o in outcomes],
        "namespace": client.namespace,
        "context_bytes": tar.size,
        "timings": outcomes[0].timings,
    }
    if inputs is not None:
        details["input_digest"] = inputs.digest
    if len(plans) == 1:
        details["digest"] = outcomes[0].digest
    else:
        from .index import assemble_index, remove_temporary_tags

        entries = [(plan.platform or "", outcome.digest) for plan, outcome in zip(plans, outcomes, strict=True)]
        try:
            details["digest"] = assemble_index(request.tags, entries, builder.settings.insecure_registries)
        except BaseException as exc:  # the platform images stay: a tag may already name the index
            discard_pushed_tags(builder, ops, runs, exc)
            raise
        # Each Job pushed its platform to a tag of its own; the index now references them.
        details["temporary_tags_left"] = remove_temporary_tags(ops, [plan.tags[0] for plan in plans])
        details["platform_digests"] = {plan.platform: o.digest for plan, o in zip(plans, outcomes, strict=True)}
    reporter.event(
        "k8s_pushed", digest=details["digest"], tags=list(request.tags), message=f"pushed {details['digest']}"
    )
    if inputs is not None:  # the Job built from these inputs (a changed context drops them above)
        from rtbuild.enginekit import record_batch_push

        record_batch_push(request.tags, key)
    return details


def _batch_key(inputs: Any, platforms: list[str]) -> str | None:
    """What build-many's push-once rule knows this request's image by: its input digest, for
    its platforms (``None`` without a digest: such a request always builds)."""
    return None if inputs is None else f"inputs:{inputs.digest}:{','.join(platforms)}"


__all__ = ["RegistryInspector", "discard_pushed_tags", "dockerconfigjson", "run_build"]
