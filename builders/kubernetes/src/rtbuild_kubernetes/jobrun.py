"""One build Job, from creation to result: Job, the Secret it owns, context upload, live
log, final state, clean-up. Failures become the errors of :mod:`.failures`; Ctrl-C, timeouts and
failures delete the Job with its pods (propagation Background) and always the Secret.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rtbuild import AgentRuntimeBuildError, get_reporter

from .client import TICK, KubeClient
from .clusterauth import refused_during_build
from .context_tar import ContextTar
from .disruption import NodeWatch, Terminating, disrupted_error
from .failures import (
    BuildCancelledError,
    ClusterAuthError,
    deadline_error,
    had_no_effect,
    job_deleted_error,
    pod_deleted_error,
    pod_refused_error,
    terminated_error,
)
from .logfollow import follow_build_log
from .manifests import (
    BUILD_CONTAINER,
    BUILD_ID_LABEL,
    CONTEXT_DIR,
    INIT_CONTAINER,
    PLATFORM_LABEL,
    UPLOAD_DONE,
    JobPlan,
    job_manifest,
    labels_for,
    secret_manifest,
)
from .podstate import build_done, build_started, container_error, init_running, node_selector, statuses
from .scheduling import Stuck, Unscheduled, event_time
from .settings import Settings

T = TypeVar("T")
#: Extra wait beyond activeDeadlineSeconds before rtbuild gives up on the cluster itself.
GRACE_S = 60
#: While the Job has no pod, how often its state and FailedCreate Events are read.
NO_POD_CHECK_S = 5.0


@dataclass
class JobOutcome:
    digest: str
    pod: str
    job: str
    lines: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class JobRun:
    def __init__(
        self,
        client: KubeClient,
        settings: Settings,
        plan: JobPlan,
        *,
        context: ContextTar | None = None,
        dockerconfigjson: bytes | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.plan = plan
        self.context = context
        self.dockerconfigjson = dockerconfigjson
        self.selector = {BUILD_ID_LABEL: plan.build_id}
        if PLATFORM_LABEL in labels_for(plan):
            self.selector[PLATFORM_LABEL] = labels_for(plan)[PLATFORM_LABEL]
        from rtbuild.enginekit import Redactor

        self.lines: list[str] = []
        #: Put before each live log line (``[linux/arm64] `` when several platforms build at once).
        self.line_prefix = ""
        #: Masks secret-looking build args' values in every line reported or kept for errors.
        self.redact = Redactor.for_build(plan.build_args)
        self.deadline = time.monotonic() + settings.active_deadline_seconds + GRACE_S
        self.timings: dict[str, float] = {}
        #: Set by :meth:`cancel` (another thread): the run stops at its next check.
        self.cancelled = threading.Event()
        #: Set once the Job has succeeded: a later cancel leaves it (and its pod's log) to its TTL.
        self.succeeded = threading.Event()
        #: Reasons already reported for a Job that cannot create its pod yet (FailedCreate), in order.
        self.warned: list[str] = []
        self.unscheduled = Unscheduled(client)  # a pod no node fits yet (an autoscaler may add one)
        self.stuck = Stuck(client, settings.active_deadline_seconds)  # a pod that does not start, silent
        self.node = NodeWatch()  # a pod whose node stopped answering
        self.terminating = Terminating()  # a deleted pod no kubelet ends (its node lost), unmarked
        self.may_exist: set[str] = set()  # the kinds whose create was sent: the clean-up deletes them

    # --- the whole run -----------------------------------------------------------------

    def run(self) -> JobOutcome:
        reporter = get_reporter()
        started = time.perf_counter()
        job_name = self.plan.job_name
        ok = cleaned = False
        try:
            self._check_cancelled()
            job = self._create("Job", job_manifest(self.plan, self.settings))
            if self.plan.secret_name:
                # The Job first, then its Secret owned by it: the garbage collector deletes the Secret
                # with the Job even after a kill -9 of rtbuild; the pod waits for its mount meanwhile.
                # Not a suspended Job resumed later: it has no deadline nor TTL (a kill -9 keeps both).
                uid = job["metadata"]["uid"]
                self._create("Secret", secret_manifest(self.plan, self.dockerconfigjson, job_uid=uid))
            self._check_cancelled()  # a cancel that came during the create: delete it now
            reporter.event("k8s_job", job=job_name, namespace=self.client.namespace, message=f"created Job {job_name}")
            pod = self._wait(init_running if self.context else build_started, "the build pod to start")
            if self.context is not None:
                self._upload(pod["metadata"]["name"])
                self.timings["upload_done_s"] = round(time.perf_counter() - started, 3)
            outcome = self._follow(started)
            ok = True
            self.succeeded.set()
            return outcome
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM: the clean-up does not wait out an outage
            self.client.stopping = True
            raise
        except AgentRuntimeBuildError as exc:
            # A termination message or an init container's stderr may echo a value too.
            exc.message = self.redact(exc.message)
            exc.args = tuple(self.redact.mask(list(exc.args)))
            exc.log_tail = self.redact.mask(exc.log_tail)
            if isinstance(exc, ClusterAuthError) and "Job" in self.may_exist:  # refused once the Job was there
                cleaned, selector = True, f"{BUILD_ID_LABEL}={self.plan.build_id}"
                left = self._cleanup(job_name, ok)  # with the same credentials: it may be refused too
                namespace = self.client.namespace
                refused_during_build(
                    exc, job=job_name, namespace=namespace, selector=selector, job_left=left, lines=self.lines
                )
            raise
        finally:
            if not cleaned:
                self._cleanup(job_name, ok)

    def _create(self, kind: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create ``kind``, its clean-up due from before the call (a create whose answer is lost
        may have created it all the same; a 404 on the delete is quiet), unless refused outright
        (401, 403, a missing namespace) or never received: nothing to delete, nor to warn about."""
        self.may_exist.add(kind)
        try:
            return self.client.create(kind, manifest)
        except BaseException as exc:
            if isinstance(exc, ClusterAuthError) or had_no_effect(exc):
                self.may_exist.discard(kind)
            raise

    def cancel(self) -> None:
        """Stop this run from another thread (Ctrl-C, SIGTERM, another platform failed):
        its Job and Secret are deleted now, which also ends the run's pod watch.

        A Job that has already succeeded is not stopped: it is left to ttlSecondsAfterFinished
        like any successful Job, with its pod's log (`kubectl logs job/NAME`, the only record of
        that platform's build under ``--quiet``); its Secret went when it succeeded."""
        if self.succeeded.is_set():
            return
        self.cancelled.set()
        self._cleanup(self.plan.job_name, False)

    def pods_stopped(self) -> bool:
        """No pod of this Job runs any more (none left, or all ended), so none can still push:
        a deleted Job's running pod gets terminationGracePeriodSeconds to stop, and stays
        listed, with a deletionTimestamp, until its containers have."""
        pods, _ = self.client.list_pods(self.selector)
        return all((pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") for pod in pods)

    def _check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise BuildCancelledError(
                f"the build Job {self.plan.job_name} was stopped: the build was cancelled",
                step="build",
                log_tail=self.lines[-20:],
                hint="another platform's Job failed, or rtbuild was interrupted (see the first error)",
            )

    def _cleanup(self, job_name: str, ok: bool) -> bool:
        """Runs on success, failure, Ctrl-C (KeyboardInterrupt) and timeouts alike. Whether the
        Job may be left running (its delete failed)."""
        errors: list[BaseException] = []
        job_left = False
        if "Job" in self.may_exist and not ok:
            try:
                if self.client.delete("Job", job_name, propagation="Background"):
                    get_reporter().event(
                        "k8s_job_deleted", job=job_name, message=f"deleted Job {job_name} and its pods"
                    )
            except BaseException as exc:  # never mask the original failure
                errors.append(exc)
                job_left = True
        if self.plan.secret_name and "Secret" in self.may_exist:  # created after the Job, never without it
            try:
                self.client.delete("Secret", self.plan.secret_name)
            except BaseException as exc:
                errors.append(exc)
        for problem in errors:
            # Never masks the build's own outcome; says what is left behind and how to remove it.
            get_reporter().event(
                "k8s_cleanup_failed",
                job=job_name,
                message=f"could not delete everything of build {self.plan.build_id} ({problem}); remove it with"
                f" `kubectl delete job,secret -l {BUILD_ID_LABEL}={self.plan.build_id}`",
            )
        return job_left

    # --- waiting on the pod ------------------------------------------------------------

    def _wait(self, ready: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Watch the Job's pod until ``ready`` says so; failure states raise. A dropped watch is re-listed."""
        while True:
            self._check_cancelled()
            pods, version = self.client.list_pods(self.selector)
            for pod in pods:
                self._check(pod)
                if ready(pod):
                    return pod
            job = self._check_job()
            if not pods:
                if job is None:  # deleted by someone else before it had a pod: none will come
                    raise job_deleted_error(self.plan.job_name, what, self.lines)
                self._check_no_pod()
            checked = time.monotonic()
            # Closed here, not when garbage collected: a Ctrl-C that lands while a dropped
            # generator is finalised is printed and swallowed by Python, and the build runs on.
            with contextlib.closing(self.client.watch_pods(self.selector, version)) as events:
                for kind, pod in events:
                    self._check_cancelled()
                    if kind == TICK:  # nothing happened for a while: only the deadline can have
                        if time.monotonic() > self.deadline:
                            break
                        self.stuck.check(pods, what != "the build to finish", self.line_prefix)
                        self.terminating.expired(self.lines)
                        quiet = time.monotonic() - checked > NO_POD_CHECK_S
                        if quiet and (not pods or self.unscheduled.pending):
                            break  # still no pod (or no node for it): list again, and read the Events
                        continue
                    pods = pods or [pod]
                    if kind == "DELETED":  # the Job may have gone first, the pod with it
                        gone = self._check_job() is None
                        raise pod_deleted_error(pod, what, self.lines, job=self.plan.job_name if gone else None)
                    self._check(pod)
                    if ready(pod):
                        return pod
                    if time.monotonic() > self.deadline:
                        break
            if time.monotonic() > self.deadline:
                raise deadline_error(self.settings.active_deadline_seconds, self.lines, self.warned)
            time.sleep(0.2)  # the watch ended (dropped, or the server's timeout): list again

    def _check_job(self) -> dict[str, Any] | None:
        """The Job (None once deleted, or being deleted); its deadline passing raises. A Job
        deleted by this run's own cancel raises the cancel's error."""
        job = self.client.get("Job", self.plan.job_name)
        if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
            self._check_cancelled()
            if time.monotonic() >= self.deadline - GRACE_S:  # failed at its deadline, then its TTL (0) ran
                raise deadline_error(self.settings.active_deadline_seconds, self.lines, self.warned)
            return None
        for condition in (job.get("status") or {}).get("conditions") or []:
            failed = condition.get("type") == "Failed" and condition.get("status") == "True"
            if failed and condition.get("reason") == "DeadlineExceeded":
                raise deadline_error(self.settings.active_deadline_seconds, self.lines, self.warned)
        return job

    def _check_no_pod(self) -> None:
        """The Job has no pod: the job controller's FailedCreate Events say why. Admission
        refused it (Pod Security, a webhook, an invalid spec) raises at once; a quota (which may
        free up) or a passing fault is one warning per reason while the wait goes on."""
        try:
            events = self.client.events(self.plan.job_name)
        except Exception:  # events are advice: without them the Job's deadline still ends the wait
            return
        for event in sorted(events, key=event_time):
            if event.get("reason") != "FailedCreate":
                continue
            error, reason = pod_refused_error(str(event.get("message") or ""), self.plan.job_name, self.settings)
            if error is not None:
                raise error
            if reason not in self.warned:
                self.warned.append(reason)
                get_reporter().event(
                    "warning", job=self.plan.job_name, message=f"the build pod cannot be created yet: {reason}"
                )

    def _check(self, pod: dict[str, Any]) -> None:
        name = pod.get("metadata", {}).get("name", "?")
        status = pod.get("status") or {}
        if status.get("reason") == "DeadlineExceeded":
            raise deadline_error(self.settings.active_deadline_seconds, self.lines, self.warned)
        disrupted = disrupted_error(pod, self.lines)  # evicted; a lost node's pod never ends
        if disrupted is not None:
            raise disrupted
        self.terminating.check(pod, self.lines)  # deleted, unmarked, and never ending: its node lost
        self.node.check(pod, self.line_prefix)  # not ready while it runs: its node may be lost
        unplaced = [c.get("message", "") for c in status.get("conditions") or [] if c.get("reason") == "Unschedulable"]
        self.unscheduled.check(name, (unplaced or [None])[0], node_selector(pod), self.line_prefix)
        failed = container_error(pod, self.settings, self.lines)
        if failed is not None:
            raise failed

    # --- upload, log, result -----------------------------------------------------------

    def _upload(self, pod: str) -> None:
        assert self.context is not None
        size = self.context.size
        script = f"mkdir -p {CONTEXT_DIR} && head -c {size} | tar -x -f - -C {CONTEXT_DIR} && {UPLOAD_DONE}"
        get_reporter().event(
            "k8s_upload", pod=pod, bytes=size, files=self.context.files, message=f"uploading context ({size} bytes)"
        )
        with open(self.context.path, "rb") as stream:
            self.client.exec_stdin(pod, INIT_CONTAINER, ["sh", "-c", script], stream, size)

    def _follow(self, started: float) -> JobOutcome:
        reporter = get_reporter()
        pod = self._wait(build_started, "the build container to start")
        name = pod["metadata"]["name"]
        first: list[float] = []
        last: list[float] = []

        finished = threading.Event()

        def show(line: str) -> None:
            now = time.perf_counter()
            if not first:
                first.append(now)
            last[:] = [now]
            line = self.redact(line)
            self.lines.append(line)
            reporter.line(self.line_prefix + line, source="build")

        def running() -> bool:
            if finished.is_set():
                return False
            try:
                current = self.client.get("Pod", name)
            except Exception:  # the API is away for a moment (a restart): the watch decides
                return not finished.is_set()
            return current is not None and not build_done(current)

        def follow() -> None:
            def warn(message: str) -> None:
                reporter.event("warning", pod=name, message=self.line_prefix + message)

            follow_build_log(self.client, name, BUILD_CONTAINER, show, running, warn, finished.wait)

        # The log is followed beside the watch, so a hung log stream never hides the result.
        thread = threading.Thread(target=follow, name=f"log-{name}", daemon=True)
        thread.start()
        try:
            pod = self._wait(build_done, "the build to finish")
        finally:
            finished.set()
        thread.join(timeout=10)
        if first:
            # The Job machinery's overhead: creation to the step's first log line, and its
            # last log line to the result (below).
            self.timings["first_log_s"] = round(first[0] - started, 3)
        state = statuses(pod, "containerStatuses")[BUILD_CONTAINER]["state"]["terminated"]
        if int(state.get("exitCode") or 0) != 0:
            job = self._check_job()
            if (pod.get("metadata") or {}).get("deletionTimestamp"):  # killed by a deletion, not its own failure
                gone = self.plan.job_name if job is None else None
                raise pod_deleted_error(pod, "the build to finish", self.lines, job=gone)
            raise terminated_error(state, self.lines, container=BUILD_CONTAINER, pod=name, limits=self.settings.limits)
        digest = (state.get("message") or "").strip()
        if last:
            self.timings["last_log_to_result_s"] = round(time.perf_counter() - last[0], 3)
        self.timings["total_s"] = round(time.perf_counter() - started, 3)
        return JobOutcome(digest=digest, pod=name, job=self.plan.job_name, lines=self.lines, timings=self.timings)


__all__ = ["JobOutcome", "JobRun"]
