"""Helpers for backends that drive an engine's CLI (``docker build``, ``podman build``).

Public for builder distributions: the no-op skip's input digest (stored as the
``org.rtbuild.input-digest`` label), a build runner that streams live progress and stops
the whole process group on Ctrl-C, and the mapping of a failed build's output (BuildKit's
or Buildah's) onto :mod:`rtbuild`'s error tree, a first build that hashes its inputs
while the engine builds (:class:`ConcurrentDigest`, digests recorded beside the image
by ID), and multi-platform requests as one build
per platform plus a registry index (:func:`plan_platforms`, :func:`assemble_indexes`).
Importing this package is light (names load on first use); nothing here imports an engine SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtbuild._lazy import lazy_exports

if TYPE_CHECKING:
    from rtbuild._framework.locks import BUILDING, remove_unless_building, unless_building
    from rtbuild._masking import masked, masked_repr, shown_args
    from rtbuild._observe.prune import (
        PruneImage,
        PruneItem,
        PrunePolicy,
        is_rtbuild_image,
        kept_in_use,
        select_prunable,
    )
    from rtbuild._observe.prune import repository as prune_repository
    from rtbuild.enginekit._batchpush import pushed_in_batch, record_batch_push
    from rtbuild.enginekit._digestkey import digest_key
    from rtbuild.enginekit._failures import (
        DISK_FULL_HINT,
        KILLED_HINT,
        RUNTIME_FAULT_HINT,
        EngineDown,
        build_error,
        host_fault_hint,
        runtime_fault,
    )
    from rtbuild.enginekit._firstbuild import ConcurrentDigest
    from rtbuild.enginekit._foreignbase import foreign_bases, has_foreign_base
    from rtbuild.enginekit._inputs import (
        DIGEST_LABEL,
        Analysis,
        ImageInspector,
        Inputs,
        all_tags_current,
        analyse,
        analyse_cached,
        carries_digest,
        compute_inputs,
        external_images,
        platform_args,
    )
    from rtbuild.enginekit._labelcheck import confirm_label
    from rtbuild.enginekit._logs import hold_log
    from rtbuild.enginekit._logs import prune_logs as prune_log_dir
    from rtbuild.enginekit._owners import OWNER_FILE, claim_directory, dead_owner_note
    from rtbuild.enginekit._partial import partly_current
    from rtbuild.enginekit._platforms import (
        PlatformPlan,
        assemble_indexes,
        build_each_platform,
        native_platform,
        plan_platforms,
        split_platforms,
        warn_foreign_bases,
        with_tag,
    )
    from rtbuild.enginekit._published import images_current, indexes_current
    from rtbuild.enginekit._records import (
        RECORDED,
        forget_digests,
        inherited_labels,
        record_digest,
        recorded_digests,
        withdraw_digest,
    )
    from rtbuild.enginekit._redact import (
        MASK,
        SECRET_ADVICE,
        Redactor,
        looks_secret,
        mask_url_passwords,
        redact_argv,
        secret_arg_names,
        secrets_in_args,
        url_passwords,
        warn_secret_args,
    )
    from rtbuild.enginekit._runner import (
        TAIL_LINES,
        RunResult,
        default_log_dir,
        die_with_parent,
        log_path_for,
        rotate_logs,
        run_build,
        step_of,
        stop_all,
        stop_process_group,
    )
    from rtbuild.enginekit._skip import (
        NO_SKIP_ARGS,
        build_args_in,
        refuse_result_args,
        report_skip_disabled,
        skip_blocked,
    )
    from rtbuild.enginekit._steps import (
        ContextTransferWatch,
        StepRecorder,
        attach_layer_sizes,
        layers_from_history,
        profile_steps,
    )
    from rtbuild.enginekit._stop import EngineProbe

#: name -> module (or "module:attribute"): imported on first use, so a no-op check does not pay for
#: the runner (subprocess, ctypes), the failure parser, the prune policy and the rest.
_NAMES: dict[str, str] = {
    "PruneImage": "rtbuild._observe.prune",
    "PruneItem": "rtbuild._observe.prune",
    "PrunePolicy": "rtbuild._observe.prune",
    "is_rtbuild_image": "rtbuild._observe.prune",
    "select_prunable": "rtbuild._observe.prune",
    "kept_in_use": "rtbuild._observe.prune",
    "hold_log": "rtbuild.enginekit._logs",
    "prune_log_dir": "rtbuild.enginekit._logs:prune_logs",
    "prune_repository": "rtbuild._observe.prune:repository",
    "EngineDown": "rtbuild.enginekit._failures",
    "build_error": "rtbuild.enginekit._failures",
    "runtime_fault": "rtbuild.enginekit._failures",
    "RUNTIME_FAULT_HINT": "rtbuild.enginekit._failures",
    "DISK_FULL_HINT": "rtbuild.enginekit._failures",
    "KILLED_HINT": "rtbuild.enginekit._failures",
    "host_fault_hint": "rtbuild.enginekit._failures",
    "ConcurrentDigest": "rtbuild.enginekit._firstbuild",
    "DIGEST_LABEL": "rtbuild.enginekit._inputs",
    "NO_SKIP_ARGS": "rtbuild.enginekit._skip",
    "Analysis": "rtbuild.enginekit._inputs",
    "ImageInspector": "rtbuild.enginekit._inputs",
    "Inputs": "rtbuild.enginekit._inputs",
    "all_tags_current": "rtbuild.enginekit._inputs",
    "analyse": "rtbuild.enginekit._inputs",
    "analyse_cached": "rtbuild.enginekit._inputs",
    "carries_digest": "rtbuild.enginekit._inputs",
    "compute_inputs": "rtbuild.enginekit._inputs",
    "digest_key": "rtbuild.enginekit._digestkey",
    "external_images": "rtbuild.enginekit._inputs",
    "partly_current": "rtbuild.enginekit._partial",
    "platform_args": "rtbuild.enginekit._inputs",
    "skip_blocked": "rtbuild.enginekit._skip",
    "refuse_result_args": "rtbuild.enginekit._skip",
    "build_args_in": "rtbuild.enginekit._skip",
    "report_skip_disabled": "rtbuild.enginekit._skip",
    "PlatformPlan": "rtbuild.enginekit._platforms",
    "assemble_indexes": "rtbuild.enginekit._platforms",
    "build_each_platform": "rtbuild.enginekit._platforms",
    "native_platform": "rtbuild.enginekit._platforms",
    "plan_platforms": "rtbuild.enginekit._platforms",
    "split_platforms": "rtbuild.enginekit._platforms",
    "warn_foreign_bases": "rtbuild.enginekit._platforms",
    "with_tag": "rtbuild.enginekit._platforms",
    "foreign_bases": "rtbuild.enginekit._foreignbase",
    "has_foreign_base": "rtbuild.enginekit._foreignbase",
    "pushed_in_batch": "rtbuild.enginekit._batchpush",
    "record_batch_push": "rtbuild.enginekit._batchpush",
    "images_current": "rtbuild.enginekit._published",
    "indexes_current": "rtbuild.enginekit._published",
    "RECORDED": "rtbuild.enginekit._records",
    "forget_digests": "rtbuild.enginekit._records",
    "inherited_labels": "rtbuild.enginekit._records",
    "unless_building": "rtbuild._framework.locks",
    "remove_unless_building": "rtbuild._framework.locks",
    "BUILDING": "rtbuild._framework.locks",
    "record_digest": "rtbuild.enginekit._records",
    "recorded_digests": "rtbuild.enginekit._records",
    "withdraw_digest": "rtbuild.enginekit._records",
    "confirm_label": "rtbuild.enginekit._labelcheck",
    "MASK": "rtbuild.enginekit._redact",
    "Redactor": "rtbuild.enginekit._redact",
    "looks_secret": "rtbuild.enginekit._redact",
    "mask_url_passwords": "rtbuild.enginekit._redact",
    "redact_argv": "rtbuild.enginekit._redact",
    "secrets_in_args": "rtbuild.enginekit._redact",
    "secret_arg_names": "rtbuild.enginekit._redact",
    "SECRET_ADVICE": "rtbuild.enginekit._redact",
    "warn_secret_args": "rtbuild.enginekit._redact",
    "url_passwords": "rtbuild.enginekit._redact",
    "masked": "rtbuild._masking",
    "masked_repr": "rtbuild._masking",
    "shown_args": "rtbuild._masking",
    "OWNER_FILE": "rtbuild.enginekit._owners",
    "claim_directory": "rtbuild.enginekit._owners",
    "dead_owner_note": "rtbuild.enginekit._owners",
    "TAIL_LINES": "rtbuild.enginekit._runner",
    "RunResult": "rtbuild.enginekit._runner",
    "default_log_dir": "rtbuild.enginekit._runner",
    "die_with_parent": "rtbuild.enginekit._runner",
    "log_path_for": "rtbuild.enginekit._runner",
    "rotate_logs": "rtbuild.enginekit._runner",
    "run_build": "rtbuild.enginekit._runner",
    "step_of": "rtbuild.enginekit._runner",
    "EngineProbe": "rtbuild.enginekit._stop",
    "stop_all": "rtbuild.enginekit._runner",
    "stop_process_group": "rtbuild.enginekit._runner",
    "StepRecorder": "rtbuild.enginekit._steps",
    "ContextTransferWatch": "rtbuild.enginekit._steps",
    "attach_layer_sizes": "rtbuild.enginekit._steps",
    "layers_from_history": "rtbuild.enginekit._steps",
    "profile_steps": "rtbuild.enginekit._steps",
}


__getattr__, __dir__ = lazy_exports(__name__, _NAMES)


__all__ = [
    "BUILDING",
    "DIGEST_LABEL",
    "DISK_FULL_HINT",
    "KILLED_HINT",
    "MASK",
    "NO_SKIP_ARGS",
    "OWNER_FILE",
    "RECORDED",
    "RUNTIME_FAULT_HINT",
    "SECRET_ADVICE",
    "TAIL_LINES",
    "Analysis",
    "ConcurrentDigest",
    "ContextTransferWatch",
    "EngineDown",
    "EngineProbe",
    "ImageInspector",
    "Inputs",
    "PlatformPlan",
    "PruneImage",
    "PruneItem",
    "PrunePolicy",
    "Redactor",
    "RunResult",
    "StepRecorder",
    "all_tags_current",
    "analyse",
    "analyse_cached",
    "assemble_indexes",
    "attach_layer_sizes",
    "build_args_in",
    "build_each_platform",
    "build_error",
    "carries_digest",
    "claim_directory",
    "compute_inputs",
    "confirm_label",
    "dead_owner_note",
    "default_log_dir",
    "die_with_parent",
    "digest_key",
    "external_images",
    "foreign_bases",
    "forget_digests",
    "has_foreign_base",
    "hold_log",
    "host_fault_hint",
    "images_current",
    "indexes_current",
    "inherited_labels",
    "is_rtbuild_image",
    "kept_in_use",
    "layers_from_history",
    "log_path_for",
    "looks_secret",
    "mask_url_passwords",
    "masked",
    "masked_repr",
    "native_platform",
    "partly_current",
    "plan_platforms",
    "platform_args",
    "profile_steps",
    "prune_log_dir",
    "prune_repository",
    "pushed_in_batch",
    "record_batch_push",
    "record_digest",
    "recorded_digests",
    "redact_argv",
    "refuse_result_args",
    "remove_unless_building",
    "report_skip_disabled",
    "rotate_logs",
    "run_build",
    "runtime_fault",
    "secret_arg_names",
    "secrets_in_args",
    "select_prunable",
    "shown_args",
    "skip_blocked",
    "split_platforms",
    "step_of",
    "stop_all",
    "stop_process_group",
    "unless_building",
    "url_passwords",
    "warn_foreign_bases",
    "warn_secret_args",
    "with_tag",
    "withdraw_digest",
]
