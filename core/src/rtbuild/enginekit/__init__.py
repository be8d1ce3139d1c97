"""Helpers for backends that drive an engine's CLI (``docker build``, ``podman build``).

Public for builder distributions: the no-op skip's input digest (stored as the
``org.rtbuild.input-digest`` label), a build runner that streams live progress and stops
the whole process group on Ctrl-C, and the mapping of a failed build's output (BuildKit's
or Buildah's) onto :mod:`rtbuild`'s error tree, and multi-platform requests as one build
per platform plus a registry index (:func:`plan_platforms`, :func:`assemble_indexes`).
Importing this package is light; nothing here imports an engine SDK.
"""

from __future__ import annotations

from rtbuild.enginekit._failures import EngineDown, build_error
from rtbuild.enginekit._inputs import (
    DIGEST_LABEL,
    NO_SKIP_ARGS,
    ImageInspector,
    Inputs,
    all_tags_current,
    compute_inputs,
    external_images,
    platform_args,
    skip_blocked,
)
from rtbuild.enginekit._platforms import (
    PlatformPlan,
    assemble_indexes,
    native_platform,
    plan_platforms,
    split_platforms,
    with_tag,
)
from rtbuild.enginekit._runner import (
    TAIL_LINES,
    RunResult,
    default_log_dir,
    log_path_for,
    run_build,
    step_of,
    stop_process_group,
)

__all__ = [
    "DIGEST_LABEL",
    "NO_SKIP_ARGS",
    "TAIL_LINES",
    "EngineDown",
    "ImageInspector",
    "Inputs",
    "PlatformPlan",
    "RunResult",
    "all_tags_current",
    "assemble_indexes",
    "build_error",
    "compute_inputs",
    "default_log_dir",
    "external_images",
    "log_path_for",
    "native_platform",
    "plan_platforms",
    "platform_args",
    "run_build",
    "skip_blocked",
    "split_platforms",
    "step_of",
    "stop_process_group",
    "with_tag",
]
