"""Many builds at once (``rtbuild build-many``): run parsed entries on a thread pool.

Every build goes through :func:`rtbuild._framework.pipeline.run_build`, so hooks, the no-op
skip and the per-tag build lock apply; requests for the same tag wait for the build in
progress. Every outcome is kept (ok, failed or skipped by ``fail_fast``), in file order.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rtbuild._framework.batchfile import BatchEntry, load_batch_file, parse_batch, requests_from
from rtbuild._framework.interrupts import cancel_scope
from rtbuild._framework.progress import Reporter, get_reporter, use_reporter
from rtbuild._framework.pushonce import push_ledger
from rtbuild.builder import BuildResult
from rtbuild.errors import AgentRuntimeBuildError, ConfigError, EngineUnavailableError

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild._framework.plugins import RtbuildPluginManager
    from rtbuild.builder import RuntimeBuilder


#: Set on the KeyboardInterrupt (or Terminated) that stopped a batch: its BatchReport so far.
REPORT_ATTR = "rtbuild_batch_report"
#: An engine that took this long to be found unreachable (it held the connection without an
#: answer) is not asked again by the batch's later builds of the same builder: each would
#: wait as long (30 s a build, a batch of 100 with -j 4 about 13 minutes).
UNANSWERED_S = 10.0
#: After the first Ctrl-C/SIGTERM, how long the batch waits for its stopped builds' workers;
#: those still running then are reported ``interrupted`` and left to the process's exit. A
#: supervisor's SIGTERM comes with a deadline (a Kubernetes pod's default is 30 s, then
#: SIGKILL): waiting for a wedged worker until then lost the report. Longer than a builder's
#: own stop takes (the engine client's SIGINT then SIGTERM: 10 s; the Kubernetes builder's
#: clean-up of the other platforms: 20 s).
STOP_WAIT_S = 25.0


@dataclass
class BatchOutcome:
    """What became of one entry: ``ok`` (with ``result``), ``failed`` (with ``error``) or
    ``skipped`` (not started because ``fail_fast`` stopped the batch)."""

    entry: BatchEntry
    status: Literal["ok", "failed", "skipped", "interrupted"]
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
        self.counts = {status: 0 for status in ("ok", "failed", "skipped", "interrupted")}
        for outcome in self.outcomes:
            self.counts[outcome.status] += 1
        self.counts["cached"] = sum(1 for o in self.outcomes if o.result is not None and o.result.cached)

    @property
    def ok(self) -> bool:
        return self.counts["failed"] == 0 and self.counts["skipped"] == 0 and self.counts["interrupted"] == 0

    def summary(self) -> str:
        c = self.counts
        built = c["ok"] - c["cached"]
        return (
            f"{len(self.outcomes)} builds in {self.duration_s:.2f}s with {self.jobs} jobs: "
            f"{built} built, {c['cached']} reused, {c['failed']} failed, {c['skipped']} skipped"
            + (f", {c['interrupted']} interrupted" if c["interrupted"] else "")
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


def _stopped(entry: BatchEntry, exc: AgentRuntimeBuildError) -> AgentRuntimeBuildError:
    """What a build stopped by Ctrl-C or SIGTERM reports: the interrupt, not the engine's
    answer to being stopped ("context canceled"), and no builder to blame."""
    what = "pushed (its build had finished)" if exc.step == "push" else "built"
    error = AgentRuntimeBuildError(
        f"stopped by the interrupt (Ctrl-C or SIGTERM) before {entry.name} was {what}",
        step=exc.step,
        log_tail=exc.log_tail,
        log_path=exc.log_path,
        hint="run build-many again: the builds that finished are reused, this one builds again",
    )
    error.__cause__ = exc
    return error


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
        raise ConfigError(
            f"--jobs must be at least 1, got {jobs}",
            step="run build-many",
            hint="e.g. --jobs 4 (--jobs 1 builds one at a time)",
        )
    config = config or load_config()
    pm = pm or get_plugin_manager(config)
    parent = get_reporter()
    report_lock = threading.Lock()
    stop = threading.Event()
    interrupted = threading.Event()  # Ctrl-C/SIGTERM (stop alone may be --fail-fast)
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
            text = f"{'interrupted' if outcome.status == 'interrupted' else 'FAILED'}: {outcome.error.message}"
        else:
            text = "skipped (--fail-fast)" if fail_fast and not interrupted.is_set() else "skipped (interrupted)"
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

    unanswered: dict[str, tuple[BatchEntry, AgentRuntimeBuildError]] = {}  # builder -> first such failure

    def one(entry: BatchEntry) -> BatchOutcome:
        if stop.is_set():
            return finish(BatchOutcome(entry, "skipped"))
        key = entry.request.builder or ""
        if key in unanswered:
            return finish(BatchOutcome(entry, "failed", error=_not_asked_again(*unanswered[key])))
        began = time.monotonic()
        try:
            with use_reporter(_BuildReporter(parent, entry.name, report_lock)):
                result = run_build(entry.request, config=config, pm=pm, builder=builder)
        except AgentRuntimeBuildError as exc:
            if interrupted.is_set():  # stopped by Ctrl-C: not a failure of its own
                return finish(BatchOutcome(entry, "interrupted", error=_stopped(entry, exc)))
            if _unanswered(exc, time.monotonic() - began):
                unanswered.setdefault(key, (entry, exc))
            return finish(BatchOutcome(entry, "failed", error=exc))
        except Exception as exc:  # a bug in a plugin or backend must not lose the other builds
            from rtbuild._framework.plugins._trace import failed_step

            blame = getattr(exc, "rtbuild_blame", None)
            who = f"it to the authors of {blame}" if blame else "it"
            error = AgentRuntimeBuildError(
                f"internal error: {type(exc).__name__}: {exc}",
                step=failed_step(exc) or "build",
                hint=f"run with --debug for the traceback and report {who}",
                blame=blame,
            )
            error.__cause__ = exc
            return finish(BatchOutcome(entry, "failed", error=error))
        except BaseException:  # KeyboardInterrupt, SystemExit: stop the batch
            interrupted.set()
            stop.set()
            raise
        return finish(BatchOutcome(entry, "ok", result=result))

    started = time.perf_counter()
    parent.event("batch_started", total=total, jobs=jobs, message=f"{total} builds, {jobs} at a time")
    pool = ThreadPoolExecutor(max_workers=min(jobs, max(total, 1)), thread_name_prefix="rtbuild-build")
    futures: list[Future[BatchOutcome]] = []
    try:
        # Each task runs in a copy of this context, so the reporter chosen here applies,
        # and so does the cancel scope: on Ctrl-C a build waiting for a tag's lock gives
        # up, and one about to start its engine build does not start it.
        with cancel_scope(interrupted), push_ledger(e.request.tags for e in entries):  # a shared tag: one push
            futures += [pool.submit(contextvars.copy_context().run, one, entry) for entry in entries]
        outcomes = [future.result() for future in futures]
    except BaseException as first:
        # Ctrl-C/SIGTERM: start nothing more, and stop the running builds (they run in
        # worker threads, which never see the main thread's interrupt).
        from rtbuild._framework.interrupts import cancel_all

        stop.set()
        interrupted.set()
        try:
            cancel_all()
            pool.shutdown(wait=False, cancel_futures=True)
            _done, running = wait(futures, timeout=STOP_WAIT_S)
        except BaseException as again:
            # A second Ctrl-C/SIGTERM: stop waiting for builds that do not stop (a wedged
            # engine call), and still report. Ignoring it made rtbuild unkillable then.
            report = _report_now(entries, futures, jobs, started, source, parent)
            _attach(again, report)
            _give_up_on(pool, report)
            raise
        report = _report_now(entries, futures, jobs, started, source, parent, waited_s=STOP_WAIT_S)
        _attach(first, report)
        if running:  # wedged: reported, not waited for any longer
            _give_up_on(pool, report)
        raise
    pool.shutdown(wait=True)
    report = BatchReport(outcomes, jobs, round(time.perf_counter() - started, 3), source)
    parent.event("batch_finished", ok=report.ok, counts=report.counts, message=report.summary())
    return report


def _unanswered(exc: AgentRuntimeBuildError, waited_s: float) -> bool:
    """Whether ``exc`` says the engine could not be reached after a long wait (it took the
    connection and never answered), rather than at once (refused: worth asking again)."""
    return isinstance(exc, EngineUnavailableError) and exc.step == "connect to engine" and waited_s >= UNANSWERED_S


def _not_asked_again(first: BatchEntry, exc: AgentRuntimeBuildError) -> AgentRuntimeBuildError:
    return EngineUnavailableError(
        f"not started: the engine did not answer build {first.index} ({first.name}): {exc.message}",
        step=exc.step,
        hint=exc.hint,
        blame=exc.blame,
    )


def _settled_outcome(
    future: Future[BatchOutcome] | None, entry: BatchEntry, waited_s: float | None = None
) -> BatchOutcome:
    """A task's outcome after an interrupt: its own, "skipped" when it never ran, or
    "interrupted" when it still runs (a second signal ended the wait for it, or ``waited_s``
    after the first one did)."""
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    if future is not None and future.running():
        why = (
            "stopped by a second interrupt (Ctrl-C or SIGTERM)"
            if waited_s is None
            else f"still running {waited_s:g} s after the interrupt (Ctrl-C or SIGTERM)"
        )
        error = AgentRuntimeBuildError(
            f"{why} while {entry.name} was being built or pushed; rtbuild did not wait for it to stop",
            step="build",
            hint="check that its engine is not still building or pushing it, then run build-many again",
        )
        return BatchOutcome(entry, "interrupted", error=error)
    return BatchOutcome(entry, "skipped")


def _report_now(
    entries: Sequence[BatchEntry],
    futures: list[Future[BatchOutcome]],
    jobs: int,
    started: float,
    source: str | None,
    parent: Reporter,
    waited_s: float | None = None,
) -> BatchReport:
    """The report after an interrupt: what finished is not lost (the CLI prints it, exit 130/143)."""
    partial = [_settled_outcome(futures[i] if i < len(futures) else None, e, waited_s) for i, e in enumerate(entries)]
    report = BatchReport(partial, jobs, round(time.perf_counter() - started, 3), source)
    parent.event("batch_finished", ok=False, counts=report.counts, message=report.summary())
    return report


def _attach(exc: BaseException | None, report: BatchReport) -> None:
    with contextlib.suppress(AttributeError):  # exception types without __dict__
        setattr(exc, REPORT_ATTR, report)


def _give_up_on(pool: ThreadPoolExecutor, report: BatchReport) -> None:
    """Start no queued task and wait for no worker: they are left to the process's exit
    (:func:`rtbuild._framework.interrupts.abandon`: the CLI then exits without joining them)."""
    from rtbuild._framework.interrupts import abandon, cancel_all

    abandon()
    try:
        pool.shutdown(wait=False, cancel_futures=True)
        cancel_all()  # the second signal may have cut the first round short; callbacks are idempotent
    except BaseException as third:  # yet another signal: the report still goes with it
        _attach(third, report)
        raise


__all__ = [
    "REPORT_ATTR",
    "BatchEntry",
    "BatchOutcome",
    "BatchReport",
    "load_batch_file",
    "parse_batch",
    "requests_from",
    "run_batch",
]
