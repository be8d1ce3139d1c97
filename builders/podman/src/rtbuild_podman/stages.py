"""Stage names as Buildah reads them: only as written, where Docker takes them in any case."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rtbuild import AgentRuntimeBuildError, BuildFailedError, BuildRequest
from rtbuild.enginekit import analyse_cached

#: Buildah's error for ``COPY --from=NAME`` (or a mount's ``from=``) naming no stage or image.
_NO_STAGE = re.compile(r"--from=(\S+): no stage or image found with that name")


def _stages(dockerfile: str, request: BuildRequest) -> list[str] | None:
    try:
        with open(dockerfile, encoding="utf-8", errors="surrogateescape") as handle:
            return analyse_cached(handle.read(), request.build_args).stages
    except (OSError, ValueError):
        return None  # podman reads it and says what is wrong


def stage_as_written(dockerfile: str, request: BuildRequest) -> str:
    """``request.target`` spelt as the Dockerfile names the stage. Docker (and rtbuild's own
    check) take a stage name in any case, Buildah only as written: ``--target FINAL`` for
    ``AS final`` failed with 'The target "FINAL" was not found'."""
    target = str(request.target)
    stages = _stages(dockerfile, request) or []
    if target in stages:
        return target
    return next((stage for stage in stages if stage.lower() == target.lower()), target)


def stage_case_error(
    lines: Sequence[str], dockerfile: str, request: BuildRequest, error: AgentRuntimeBuildError
) -> BuildFailedError | None:
    """``error`` with a hint when podman found no stage or image ``--from=NAME`` names: the
    Dockerfile writes that stage in another case (Docker builds it), or NAME is an image
    podman could not pull (as Docker's error for it: step 'resolve base image'); else ``None``."""
    found = next(filter(None, (_NO_STAGE.search(line) for line in reversed(lines) if line.startswith("Error:"))), None)
    if found is None:
        return None
    named = found.group(1)
    stages = _stages(dockerfile, request) or []
    stage = next((s for s in stages if s.lower() == named.lower() and s != named), None)
    if stage is None:
        listed = f" (its stages: {', '.join(stages)})" if stages else ""
        return BuildFailedError(
            f"base image could not be resolved: --from={named} names no stage of the Dockerfile{listed}, and"
            " podman could not pull it as an image",
            step="resolve base image",
            log_tail=error.log_tail,
            log_path=error.log_path,
            hint=f"build or load {named} locally first (`rtbuild exists {named} --pull` says why it cannot be"
            " pulled: absent, or credentials refused), or fix the name",
        )
    return BuildFailedError(
        f"{error.message} (the Dockerfile's stage is '{stage}')",
        step=error.step,
        log_tail=error.log_tail,
        log_path=error.log_path,
        hint=f"Podman finds a stage only as written, where Docker takes --from={named} for the stage '{stage}':"
        f" write --from={stage}",
    )


__all__ = ["stage_as_written", "stage_case_error"]
