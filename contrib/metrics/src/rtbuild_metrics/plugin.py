"""The ``post_build`` hook: one JSON line per build, appended to the metrics file.

Settings: ``[plugins.metrics] path`` or ``RTBUILD_METRICS_FILE`` (the environment wins);
default ``$XDG_STATE_HOME/rtbuild/metrics.jsonl`` (``~/.local/state/rtbuild/metrics.jsonl``).
A metrics failure never fails a build: the image exists by then, so losing it over a
log line would be worse than a missing line. It is reported as a warning instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import rtbuild

from .record import MetricsWriteError, append_line, make_failure_record, make_record

if TYPE_CHECKING:
    from rtbuild import BuildRequest, BuildResult, Config, RuntimeBuilder

ENV_FILE = "RTBUILD_METRICS_FILE"
ENV_MAX_BYTES = "RTBUILD_METRICS_MAX_BYTES"
#: A platform's no-ops add a line each (about 250 bytes): bound the file, keep one generation.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class MetricsWarning(UserWarning):
    """The metrics line could not be written; the build itself succeeded."""


def default_path(env: Mapping[str, str] | None = None) -> Path:
    return rtbuild.state_dir("metrics.jsonl", env=env)


@dataclass(frozen=True)
class _Table:
    """``[plugins.metrics]``: checked like every plugin's table (types, unknown keys)."""

    path: str = rtbuild.setting("", env=ENV_FILE, path=True, help="the JSON-lines file to append to")
    max_bytes: int = rtbuild.setting(
        DEFAULT_MAX_BYTES,
        env=ENV_MAX_BYTES,
        check=lambda value: "must be 0 (no bound) or more" if value < 0 else None,
        help="once the file holds this many bytes it is renamed to FILE.1 (0: never)",
    )


def _table(config: Config, env: Mapping[str, str]) -> _Table:
    return rtbuild.plugin_settings(_Table, config, "metrics", env=env, docs="docs/plugins/metrics.md")


def metrics_path(config: Config, env: Mapping[str, str] | None = None) -> Path:
    """Where lines go: ``RTBUILD_METRICS_FILE`` > ``[plugins.metrics] path`` > default."""
    env = os.environ if env is None else env
    return _path(_table(config, env), env)


def _path(table: _Table, env: Mapping[str, str]) -> Path:
    return Path(os.path.expanduser(table.path)) if table.path else default_path(env)


def image_size(builder: RuntimeBuilder | None, image: str) -> int | None:
    """The size ``builder.inspect_image(image)`` reports; ``None`` when unknown or on failure."""
    if builder is None:
        return None
    try:
        info = builder.inspect_image(image)
    except Exception:  # size is best-effort: an engine hiccup must not cost the record
        return None
    size = info.size if info is not None else None
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _stage(request: BuildRequest) -> str | None:
    # Runtime images build in stages ("deps", "source", "exact"): say which one this line is.
    stage = request.data.get("runtime_stage")
    return stage if isinstance(stage, str) else None


# trylast: a later post_build hook that fails the build (a scan policy) then leaves one
# failure line (build_failed) instead of a success line followed by a failure line.
@rtbuild.hookimpl(trylast=True)
def post_build(request: BuildRequest, result: BuildResult, config: Config, builder: RuntimeBuilder) -> None:
    # A backend that saw the size during the build says so in details (no second inspect).
    known = result.details.get("image_size")
    size = known if isinstance(known, int) and not isinstance(known, bool) else image_size(builder, result.image)
    record = make_record(result, size, _stage(request))
    _write(config, record)


@rtbuild.hookimpl
def build_failed(
    request: BuildRequest, error: Exception, config: Config, builder: RuntimeBuilder | None, duration_s: float
) -> None:
    name = (builder.name or type(builder).__name__) if builder is not None else request.builder
    _write(config, make_failure_record(request, error, name, duration_s, _stage(request)))


def _write(config: Config, record: dict[str, object]) -> None:
    # A bad [plugins.metrics] table is said as a warning, never raised: raising here would
    # fail a build that succeeded, or hide the error of one that failed.
    try:
        table = _table(config, os.environ)  # read once per line: it is on every no-op's path
        append_line(_path(table, os.environ), record, table.max_bytes)
    except (MetricsWriteError, rtbuild.ConfigError) as exc:
        from rtbuild import get_reporter

        outcome = "succeeded" if record.get("success") else "failed anyway"
        message = f"metrics: {exc} (the build {outcome}; no metrics line was written)"
        reporter = get_reporter()
        reporter.event("warning", message=message)
        if type(reporter) is rtbuild.Reporter:
            # Nothing shows the event (the library's default reporter): a Python warning
            # then. Both printed it twice on the CLI ('warning: metrics: ...' two times).
            warnings.warn(message, MetricsWarning, stacklevel=2)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENV_FILE",
    "ENV_MAX_BYTES",
    "MetricsWarning",
    "build_failed",
    "default_path",
    "image_size",
    "metrics_path",
    "post_build",
]
