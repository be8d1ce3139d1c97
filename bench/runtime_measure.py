"""Measurement helpers for runtime images (used by bench/ scenario P3).

Two builds of the *same* runtime image composition:

* :func:`build_scratch` -- everything from nothing: reuse bypassed (``force_rebuild``) and
  the engine's layer cache off (``no_cache``), so the dependency layers (apt, pip) run.
* :func:`build_source_change` -- the same composition with one file in the source layer
  group changed: the lock tag exists, so only the layers above it are built.

Both add one marker file (``MARKER_PATH``) to the source layers; its content is the only
thing a source change changes. Time them with whatever the benchmark uses; each returns
the :class:`~rtbuild.BuildResult` (``details["runtime_tier"]`` says which path ran).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rtbuild.runtime._build import build_runtime_image

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild.builder import BuildResult

MARKER_PATH = "/opt/rtbuild/bench-source-marker.txt"
DEFAULT_BASE = "debian:bookworm"
DEFAULT_PLUGINS = ("jupyter", "cacerts")
DEFAULT_REPO = "rtbuild-bench/runtime"


def build_scratch(
    config: Config | None = None,
    base_image: str = DEFAULT_BASE,
    plugins: Sequence[str] = DEFAULT_PLUGINS,
    *,
    repo: str = DEFAULT_REPO,
    marker: str = "scratch",
    **kwargs: Any,
) -> BuildResult:
    """Build the runtime image from scratch: no tag reuse, no engine layer cache."""
    return build_runtime_image(
        config,
        base_image,
        list(plugins),
        repo=repo,
        force_rebuild=True,
        no_cache=True,
        extra_files={MARKER_PATH: f"{marker}\n"},
        **kwargs,
    )


def build_source_change(
    config: Config | None = None,
    base_image: str = DEFAULT_BASE,
    plugins: Sequence[str] = DEFAULT_PLUGINS,
    *,
    repo: str = DEFAULT_REPO,
    marker: str | None = None,
    **kwargs: Any,
) -> BuildResult:
    """Rebuild the same image with only the source-layer marker changed (lock tier).

    ``marker`` defaults to a fresh random value, so every call is a real source change.
    Call :func:`build_scratch` (or any build of the composition) first so the lock tag exists.
    """
    return build_runtime_image(
        config,
        base_image,
        list(plugins),
        repo=repo,
        extra_files={MARKER_PATH: f"{marker or uuid.uuid4().hex}\n"},
        **kwargs,
    )


def compare_source_change_to_scratch(
    config: Config | None = None,
    base_image: str = DEFAULT_BASE,
    plugins: Sequence[str] = DEFAULT_PLUGINS,
    *,
    repo: str = DEFAULT_REPO,
) -> dict[str, Any]:
    """One scratch build then one source-only rebuild; wall-clock seconds of each and the ratio."""
    started = time.perf_counter()
    scratch = build_scratch(config, base_image, plugins, repo=repo)
    scratch_s = time.perf_counter() - started
    started = time.perf_counter()
    source = build_source_change(config, base_image, plugins, repo=repo)
    source_s = time.perf_counter() - started
    return {
        "scratch_s": round(scratch_s, 3),
        "source_change_s": round(source_s, 3),
        "speedup": round(scratch_s / source_s, 1) if source_s else None,
        "scratch_tier": scratch.details.get("runtime_tier"),
        "source_change_tier": source.details.get("runtime_tier"),
        "lock_tag": source.details.get("lock_tag"),
        "images": [scratch.image, source.image],
    }


__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_PLUGINS",
    "DEFAULT_REPO",
    "MARKER_PATH",
    "build_scratch",
    "build_source_change",
    "compare_source_change_to_scratch",
]
