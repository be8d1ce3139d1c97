"""Many builds from one file (``rtbuild build-many``): parse it, run it on a thread pool.

The file is TOML or YAML, like a bake file: an optional ``defaults`` table and a list of
``build`` entries, each one build request. Every build goes through
:func:`rtbuild._framework.pipeline.run_build`, so hooks, the no-op skip and the per-tag build lock
apply; requests for the same tag wait for the build in progress. Every outcome is kept
(ok, failed or skipped by ``fail_fast``), in file order.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtbuild._framework.config import BOOLEAN, STRING, STRING_LIST, STRING_MAP, check_type
from rtbuild._framework.progress import Reporter, get_reporter, use_reporter
from rtbuild.builder import BuildRequest, BuildResult
from rtbuild.errors import AgentRuntimeBuildError, ConfigError, InvalidReferenceError

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild._framework.plugins import RtbuildPluginManager
    from rtbuild.builder import RuntimeBuilder

STEP = "read build-many file"
HINT = "see the build-many section of docs/cli.md for the file format"

#: Keys of one build entry (and of ``defaults``, except ``name``) and their types.
ENTRY_KEYS: dict[str, str] = {
    "name": STRING,
    "path": STRING,
    "tags": STRING_LIST,
    "platform": STRING,
    "build_args": STRING_MAP,
    "labels": STRING_MAP,
    "builder": STRING,
    "push": BOOLEAN,
    "target": STRING,
    "no_cache": BOOLEAN,
    "extra_args": STRING_LIST,
}
TOP_KEYS = ("defaults", "build")


@dataclass
class BatchEntry:
    """One build of the file: its 1-based position, a unique name and the request."""

    index: int
    name: str
    request: BuildRequest


@dataclass
class BatchOutcome:
    """What became of one entry: ``ok`` (with ``result``), ``failed`` (with ``error``) or
    ``skipped`` (not started because ``fail_fast`` stopped the batch)."""

    entry: BatchEntry
    status: str
    result: BuildResult | None = None
    error: AgentRuntimeBuildError | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.entry.index,
            "name": self.entry.name,
            "tags": list(self.entry.request.tags),
            "status": self.status,
            "result": self.result.to_dict() if self.result else None,
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass
class BatchReport:
    """All outcomes, in file order, and the wall time of the whole batch."""

    outcomes: list[BatchOutcome]
    jobs: int
    duration_s: float
    source: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = {status: 0 for status in ("ok", "failed", "skipped")}
        for outcome in self.outcomes:
            self.counts[outcome.status] += 1
        self.counts["cached"] = sum(1 for o in self.outcomes if o.result is not None and o.result.cached)

    @property
    def ok(self) -> bool:
        return self.counts["failed"] == 0 and self.counts["skipped"] == 0

    def summary(self) -> str:
        c = self.counts
        built = c["ok"] - c["cached"]
        return (
            f"{len(self.outcomes)} builds in {self.duration_s:.2f}s with {self.jobs} jobs: "
            f"{built} built, {c['cached']} reused, {c['failed']} failed, {c['skipped']} skipped"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "jobs": self.jobs,
            "duration_s": self.duration_s,
            "ok": self.ok,
            "counts": dict(self.counts),
            "builds": [outcome.to_dict() for outcome in self.outcomes],
        }


# --- parsing ----------------------------------------------------------------------------


def _error(source: str, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {problem}", step=STEP, hint=HINT)


def _validate_table(table: Any, source: str, where: str, allow_name: bool = True) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _error(source, where, f"expected a table of build settings, got {type(table).__name__}")
    clean: dict[str, Any] = {}
    for key, value in table.items():
        kind = ENTRY_KEYS.get(key)
        if kind is None or (key == "name" and not allow_name):
            known = ", ".join(k for k in ENTRY_KEYS if allow_name or k != "name")
            raise _error(source, where, f"unknown key {key!r} (known: {known})")
        if key == "tags" and isinstance(value, str):
            value = [value]  # one tag may be written as a plain string
        if not check_type(value, kind):
            raise _error(source, where, f"{key!r} must be a {kind}, got {value!r}")
        clean[key] = value
    return clean


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read build-many file {path}: {exc.strerror}", step=STEP, hint=HINT) from exc
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: malformed TOML: {exc}", step=STEP, hint="fix the TOML syntax") from exc
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ConfigError(
                f"{path}: reading YAML needs PyYAML",
                step=STEP,
                hint="pip install 'rtbuild[yaml]' (PyYAML), or write the file as TOML",
            ) from exc
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: malformed YAML: {exc}", step=STEP, hint="fix the YAML syntax") from exc
    raise ConfigError(
        f"{path}: unknown build-many file type {suffix or '(none)'!r}",
        step=STEP,
        hint="name the file *.toml, *.yaml or *.yml",
    )


def parse_batch(document: Any, source: str = "<build-many>", base_dir: Path | None = None) -> list[BatchEntry]:
    """Validate a parsed document and turn it into entries; relative paths resolve against
    ``base_dir`` (the file's directory). Raises :class:`ConfigError` naming the entry."""
    from rtbuild.oci._references import parse_reference

    base_dir = base_dir or Path.cwd()
    if isinstance(document, list):  # YAML may be just the list of builds
        document = {"build": document}
    if not isinstance(document, dict):
        raise _error(source, "top level", "expected a table with a 'build' list (or, in YAML, a list of builds)")
    for key in document:
        if key not in TOP_KEYS:
            raise _error(source, "top level", f"unknown key {key!r} (known: {', '.join(TOP_KEYS)})")
    defaults = _validate_table(document.get("defaults", {}), source, "defaults", allow_name=False)
    builds = document.get("build")
    if not isinstance(builds, list) or not builds:
        raise _error(source, "top level", "'build' must be a non-empty list of builds ([[build]] tables in TOML)")

    entries: list[BatchEntry] = []
    explicit_names: set[str] = set()
    for index, raw in enumerate(builds, start=1):
        label = _label(index, raw)
        table = _validate_table(raw, source, label)
        merged: dict[str, Any] = {**defaults, **table}
        for key in ("build_args", "labels"):
            merged[key] = {**defaults.get(key, {}), **table.get(key, {})}
        if "path" not in merged:
            raise _error(source, label, "'path' is required (the build context directory)")
        tags = merged.get("tags") or []
        if not tags:
            raise _error(source, label, "'tags' must name at least one tag")
        if label == f"build entry {index}":  # tags came from the defaults
            label += f" ({tags[0]})"
        for tag in tags:
            try:
                parse_reference(tag)
            except InvalidReferenceError as exc:
                raise _error(source, label, exc.message) from exc
        context = Path(os.path.expanduser(merged["path"]))
        context = context if context.is_absolute() else base_dir / context
        if not context.is_dir():
            raise _error(source, label, f"build context {str(context)!r} is not a directory")
        name = table.get("name")
        if name is not None:
            if name in explicit_names:
                raise _error(source, label, f"name {name!r} is used by an earlier entry")
            explicit_names.add(name)
        request = BuildRequest(
            path=str(context),
            tags=list(tags),
            platform=merged.get("platform"),
            extra_build_args=list(merged.get("extra_args", [])),
            build_args={k: str(v) for k, v in merged["build_args"].items()},
            labels={k: str(v) for k, v in merged["labels"].items()},
            builder=merged.get("builder"),
            # None: the config decides; an explicit false wins over `push = true` there.
            push=merged.get("push"),
        )
        if merged.get("target"):
            request.target = merged["target"]
        if merged.get("no_cache"):
            request.no_cache = True
        entries.append(BatchEntry(index, name or "", request))
    _name_unnamed(entries, explicit_names)
    return entries


def _label(index: int, raw: Any) -> str:
    """How errors name an entry: its position and its name, or else its first tag."""
    label = f"build entry {index}"
    if isinstance(raw, dict):
        tags = raw.get("tags")
        tag = tags if isinstance(tags, str) else tags[0] if isinstance(tags, list) and tags else None
        name = raw.get("name") if isinstance(raw.get("name"), str) else tag
        if isinstance(name, str):
            label += f" ({name})"
    return label


def _name_unnamed(entries: Sequence[BatchEntry], taken: set[str]) -> None:
    """Unnamed entries are called by their first tag, with ``#N`` when that is not unique."""
    first_tags = [e.request.tags[0] for e in entries if not e.name]
    for entry in entries:
        if entry.name:
            continue
        tag = entry.request.tags[0]
        unique = first_tags.count(tag) == 1 and tag not in taken
        entry.name = tag if unique else f"{tag}#{entry.index}"


def load_batch_file(path: str | os.PathLike[str]) -> list[BatchEntry]:
    """Read, validate and parse a ``build-many`` file (``.toml``, ``.yaml`` or ``.yml``)."""
    file_path = Path(path)
    if not file_path.is_file():
        raise ConfigError(f"build-many file {file_path} does not exist", step=STEP, hint=HINT)
    return parse_batch(_read_document(file_path), str(file_path), file_path.resolve().parent)


# --- running ----------------------------------------------------------------------------


class _BuildReporter(Reporter):
    """Forwards one build's progress to the batch's reporter, prefixed with the build's
    name; a shared lock keeps lines from concurrent builds whole."""

    def __init__(self, parent: Reporter, name: str, lock: threading.Lock) -> None:
        self._parent, self._name, self._lock = parent, name, lock

    def line(self, text: str, *, source: str = "build") -> None:
        with self._lock:
            self._parent.line(f"[{self._name}] {text}", source=source)

    def event(self, kind: str, **fields: Any) -> None:
        if "message" in fields:
            fields["message"] = f"[{self._name}] {fields['message']}"
        with self._lock:
            self._parent.event(kind, build=self._name, **fields)


def run_batch(
    entries: Sequence[BatchEntry],
    *,
    jobs: int = 4,
    fail_fast: bool = False,
    config: Config | None = None,
    pm: RtbuildPluginManager | None = None,
    builder: RuntimeBuilder | None = None,
    source: str | None = None,
    on_outcome: Callable[[BatchOutcome], None] | None = None,
) -> BatchReport:
    """Run every entry through :func:`~rtbuild._framework.pipeline.run_build`, ``jobs`` at a time.

    Never raises for a build's failure: each one is an outcome. With ``fail_fast`` the
    entries not yet started after the first failure are ``skipped``; running ones finish.
    """
    from rtbuild._framework.config import load_config
    from rtbuild._framework.pipeline import run_build
    from rtbuild._framework.plugins import get_plugin_manager

    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}", step="run build-many")
    config = config or load_config()
    pm = pm or get_plugin_manager(config)
    parent = get_reporter()
    report_lock = threading.Lock()
    stop = threading.Event()
    done: list[int] = []
    total = len(entries)

    def finish(outcome: BatchOutcome) -> BatchOutcome:
        with report_lock:
            done.append(outcome.entry.index)
            count = len(done)
        if outcome.status == "failed" and fail_fast:
            stop.set()
        if outcome.result is not None:
            how = "reused" if outcome.result.cached else "built"
            text = f"{how} {outcome.result.image} in {outcome.result.duration_s:.2f}s"
        elif outcome.error is not None:
            text = f"FAILED: {outcome.error.message}"
        else:
            text = "skipped (--fail-fast)"
        with report_lock:
            parent.event(
                "batch_build_finished",
                build=outcome.entry.name,
                index=outcome.entry.index,
                status=outcome.status,
                done=count,
                total=total,
                message=f"({count}/{total}) {outcome.entry.name}: {text}",
            )
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    def one(entry: BatchEntry) -> BatchOutcome:
        if stop.is_set():
            return finish(BatchOutcome(entry, "skipped"))
        try:
            with use_reporter(_BuildReporter(parent, entry.name, report_lock)):
                result = run_build(entry.request, config=config, pm=pm, builder=builder)
        except AgentRuntimeBuildError as exc:
            return finish(BatchOutcome(entry, "failed", error=exc))
        except Exception as exc:  # a bug in a plugin or backend must not lose the other builds
            error = AgentRuntimeBuildError(
                f"internal error: {type(exc).__name__}: {exc}",
                step="build",
                hint="run with --debug for the traceback and report it",
            )
            error.__cause__ = exc
            return finish(BatchOutcome(entry, "failed", error=error))
        except BaseException:  # KeyboardInterrupt, SystemExit: stop the batch
            stop.set()
            raise
        return finish(BatchOutcome(entry, "ok", result=result))

    started = time.perf_counter()
    parent.event("batch_started", total=total, jobs=jobs, message=f"{total} builds, {jobs} at a time")
    pool = ThreadPoolExecutor(max_workers=min(jobs, max(total, 1)), thread_name_prefix="rtbuild-build")
    try:
        # Each task runs in a copy of this context, so the reporter chosen here applies.
        futures = [pool.submit(contextvars.copy_context().run, one, entry) for entry in entries]
        outcomes = [future.result() for future in futures]
    except BaseException:
        # Ctrl-C: start nothing more; the running builds see the signal themselves.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    report = BatchReport(outcomes, jobs, round(time.perf_counter() - started, 3), source)
    parent.event("batch_finished", ok=report.ok, counts=report.counts, message=report.summary())
    return report


def requests_from(requests: Sequence[BuildRequest]) -> list[BatchEntry]:
    """Entries for :func:`run_batch` from requests built in code (named by first tag)."""
    entries = [BatchEntry(index, "", request) for index, request in enumerate(requests, start=1)]
    _name_unnamed(entries, set())
    return entries


__all__ = [
    "ENTRY_KEYS",
    "BatchEntry",
    "BatchOutcome",
    "BatchReport",
    "load_batch_file",
    "parse_batch",
    "requests_from",
    "run_batch",
]
