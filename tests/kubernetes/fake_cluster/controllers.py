"""The job controller and the garbage collector, reduced to what one-pod build Jobs need:
a pod from the template, backoffLimit retries, activeDeadlineSeconds, ttlSecondsAfterFinished,
the Complete/Failed conditions, and deletion with a propagation policy (the owned objects of
other kinds are garbage.py's)."""

from __future__ import annotations

import asyncio
import copy
import secrets
from typing import Any

from .events import record_event
from .garbage import orphan_dependents
from .kubelet import Kubelet
from .resources import prepare_pod
from .selectors import LabelSelector
from .store import Store, now

Obj = dict[str, Any]
RETRY_DELAY = 0.2  # the real controller backs off 10 s, 20 s, ...; tests want it quick
REFUSED_RETRY = 1.0  # a pod create admission refused is retried (the real controller backs off too)


def _condition(type_: str, reason: str | None = None, message: str | None = None) -> Obj:
    stamp = now()
    entry: Obj = {"type": type_, "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp}
    if reason:
        entry["reason"] = reason
    if message:
        entry["message"] = message
    return entry


def finished(job: Obj) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in job["status"].get("conditions") or []
    )


class JobController:
    def __init__(self, store: Store, kubelet: Kubelet) -> None:
        self.store, self.kubelet = store, kubelet
        self.timers: dict[str, list[asyncio.TimerHandle | asyncio.Task[None]]] = {}
        #: When set, admission refuses every pod the controller creates with this reason (Pod
        #: Security, a quota, a webhook): a FailedCreate Event on the Job, and no pod, retried.
        self.refuse_pods: str | None = None
        kubelet.on_pod_finished.append(self._pod_finished)

    # -- jobs --------------------------------------------------------------------------
    def job_created(self, job: Obj) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        if job["spec"].get("suspend"):
            return
        self.store.mutate("jobs", namespace, name, lambda j: j["status"].update({"startTime": now(), "active": 0}))
        self._start_pod(namespace, name)
        deadline = job["spec"].get("activeDeadlineSeconds")
        if deadline:
            loop = asyncio.get_running_loop()
            handle = loop.call_later(deadline, lambda: self._spawn(self._deadline_exceeded(namespace, name)))
            self.timers.setdefault(job["metadata"]["uid"], []).append(handle)

    def _spawn(self, coro: Any) -> None:
        asyncio.get_running_loop().create_task(coro)

    def _start_pod(self, namespace: str, name: str) -> None:
        job = self.store.get("jobs", namespace, name)
        if job is None or finished(job) or job["metadata"].get("deletionTimestamp"):
            return
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.setdefault("metadata", {})
        meta.pop("name", None)
        meta["generateName"] = f"{name}-"
        meta["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": job["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec", {})}
        if self.refuse_pods:
            attempt = f"{name}-{secrets.token_hex(3)[:5]}"
            message = f'Error creating: pods "{attempt}" is forbidden: {self.refuse_pods}'
            record_event(self.store, job, "FailedCreate", message, "Warning", "job-controller")
            asyncio.get_running_loop().call_later(REFUSED_RETRY, self._start_pod, namespace, name)
            return
        prepare_pod(pod)
        pod = self.store.create("pods", namespace, pod)
        record_event(
            self.store, job, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", "Normal", "job-controller"
        )
        self.store.mutate("jobs", namespace, name, lambda j: j["status"].update({"active": 1}))
        self.kubelet.start(namespace, pod["metadata"]["name"])

    def _owner(self, pod: Obj) -> Obj | None:
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Job" and ref.get("controller"):
                job = self.store.get("jobs", pod["metadata"]["namespace"], ref["name"])
                if job is not None and job["metadata"]["uid"] == ref["uid"]:
                    return job
        return None

    def _pod_finished(self, pod: Obj) -> None:
        job = self._owner(pod)
        if job is None or finished(job):
            return
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        if pod["status"]["phase"] == "Succeeded":

            def complete(j: Obj) -> None:
                status = j["status"]
                status.update(
                    {"active": 0, "ready": 0, "succeeded": status.get("succeeded", 0) + 1, "completionTime": now()}
                )
                status["conditions"] = [
                    _condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                    _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
                ]

            job = self.store.mutate("jobs", namespace, name, complete)
            if job is not None:
                record_event(self.store, job, "Completed", "Job completed", "Normal", "job-controller")
                self._after_finish(job)
            return
        failed = job["status"].get("failed", 0) + 1
        if failed > job["spec"].get("backoffLimit", 6):
            self._fail(
                namespace, name, "BackoffLimitExceeded", "Job has reached the specified backoff limit", failed=failed
            )
            return
        self.store.mutate("jobs", namespace, name, lambda j: j["status"].update({"failed": failed, "active": 0}))
        asyncio.get_running_loop().call_later(RETRY_DELAY, self._start_pod, namespace, name)

    def _fail(self, namespace: str, name: str, reason: str, message: str, failed: int | None = None) -> None:
        def fail(j: Obj) -> None:
            status = j["status"]
            status.update({"active": 0, "ready": 0})
            if failed is not None:
                status["failed"] = failed
            status["conditions"] = [_condition("FailureTarget", reason, message), _condition("Failed", reason, message)]

        job = self.store.mutate("jobs", namespace, name, fail)
        if job is not None:
            record_event(self.store, job, reason, message, "Warning", "job-controller")
            self._after_finish(job)

    async def _deadline_exceeded(self, namespace: str, name: str) -> None:
        job = self.store.get("jobs", namespace, name)
        if job is None or finished(job):
            return
        self._fail(namespace, name, "DeadlineExceeded", "Job was active longer than specified deadline")
        await self.delete_pods(job, grace=None, only_active=True)

    def _after_finish(self, job: Obj) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        handle = asyncio.get_running_loop().call_later(
            ttl, lambda: self._spawn(self.delete_job(namespace, name, "Background", ttl_uid=job["metadata"]["uid"]))
        )
        self.timers.setdefault(job["metadata"]["uid"], []).append(handle)

    # -- deletion (garbage collector) --------------------------------------------------
    def pods_of(self, job: Obj) -> list[Obj]:
        selector = LabelSelector.from_match(job["spec"].get("selector"))
        return [
            pod
            for pod in self.store.list("pods", job["metadata"]["namespace"], selector)
            if any(ref.get("uid") == job["metadata"]["uid"] for ref in pod["metadata"].get("ownerReferences") or [])
        ]

    async def delete_pods(self, job: Obj, grace: int | None, only_active: bool = False) -> None:
        pods = [p for p in self.pods_of(job) if not only_active or p["status"].get("phase") in ("Pending", "Running")]
        await asyncio.gather(
            *(
                self.kubelet.delete_pod(
                    p["metadata"]["namespace"],
                    p["metadata"]["name"],
                    grace if grace is not None else p["spec"].get("terminationGracePeriodSeconds", 30),
                )
                for p in pods
            ),
            return_exceptions=True,
        )

    async def delete_job(self, namespace: str, name: str, policy: str, ttl_uid: str | None = None) -> Obj | None:
        job = self.store.get("jobs", namespace, name)
        if job is None or (ttl_uid and job["metadata"]["uid"] != ttl_uid):
            return None
        for handle in self.timers.pop(job["metadata"]["uid"], []):
            handle.cancel()
        if policy == "Orphan":
            orphan_dependents(self.store, job)
            for pod in self.pods_of(job):

                def orphan(p: Obj) -> None:
                    p["metadata"]["ownerReferences"] = [
                        r for r in p["metadata"].get("ownerReferences") or [] if r.get("uid") != job["metadata"]["uid"]
                    ] or None
                    if p["metadata"]["ownerReferences"] is None:
                        del p["metadata"]["ownerReferences"]

                self.store.mutate("pods", namespace, pod["metadata"]["name"], orphan)
            return self.store.remove("jobs", namespace, name)
        if policy == "Foreground":

            def mark(j: Obj) -> None:
                j["metadata"]["deletionTimestamp"] = now()
                j["metadata"]["finalizers"] = ["foregroundDeletion"]

            marked = self.store.mutate("jobs", namespace, name, mark)
            self._spawn(self._foreground(job))
            return marked
        removed = self.store.remove("jobs", namespace, name)
        self._spawn(self.delete_pods(job, grace=None))
        return removed

    async def _foreground(self, job: Obj) -> None:
        await self.delete_pods(job, grace=None)
        self.store.remove("jobs", job["metadata"]["namespace"], job["metadata"]["name"])

    def cancel_all(self) -> None:
        for handles in self.timers.values():
            for handle in handles:
                handle.cancel()
        self.timers.clear()
