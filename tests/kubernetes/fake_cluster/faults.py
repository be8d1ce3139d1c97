"""Fault switches a test flips on the fake cluster (thread-safe: tests call them from the test
thread while the server runs on its own loop)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .resources import status


def reply(body: dict[str, Any], code: int) -> web.Response:
    import json

    return web.Response(status=code, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


if TYPE_CHECKING:
    from .api import Target
    from .cluster import FakeCluster

USER = "system:serviceaccount:rtbuild-test:rtbuild-builder"


@dataclass
class _Failure:
    remaining: int
    status: int
    verb: str | None
    resource: str | None
    retry_after: int | None
    delay: float = 0.0


class Faults:
    def __init__(self, cluster: FakeCluster) -> None:
        self._cluster = cluster
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._forbidden: set[tuple[str, str]] = set()
        self._watch_drops: list[int] = []
        self._exec_breaks: list[int] = []
        self._log_drops: list[int] = []
        self._lost_answers: list[tuple[str, str]] = []
        self._slow: list[_Failure] = []  # requests answered late (slow_next)
        self.latency = 0.0  # seconds added before every API answer (a slow or distant API server)
        self.unauthorized = False  # every request answers 401 (an expired or revoked token)
        self._lost_node = False
        self._unavailable: tuple[float, int] = (0.0, 503)  # (until, status): every request refused

    def fail_next(
        self,
        n: int,
        status: int = 429,
        verb: str | None = None,
        resource: str | None = None,
        retry_after: int | None = 1,
    ) -> None:
        """The next ``n`` requests matching verb/resource (None = any) answer ``status``
        (429 TooManyRequests with Retry-After, 500 InternalError, 503 ServiceUnavailable...)."""
        with self._lock:
            self._failures.append(_Failure(n, status, verb, resource, retry_after))

    def slow_next(self, n: int, seconds: float, verb: str | None = None, resource: str | None = None) -> None:
        """The next ``n`` requests matching verb/resource (None = any) are carried out and
        answered ``seconds`` late (API Priority and Fairness queueing, a slow etcd, an
        admission webhook taking up to its timeoutSeconds, at most 30 s)."""
        with self._lock:
            self._slow.append(_Failure(n, 0, verb, resource, None, seconds))

    def unavailable(self, seconds: float, status: int = 503) -> None:
        """For ``seconds`` from now every request answers ``status`` with Retry-After: 1 (an
        API server restarting behind a load balancer: 503, or 502/504 from the balancer)."""
        with self._lock:
            self._unavailable = (time.monotonic() + seconds, status)

    def forbid(self, verb: str, resource: str) -> None:
        """RBAC says no: ``forbid("create", "pods/exec")`` until ``clear()``."""
        with self._lock:
            self._forbidden.add((verb, resource))

    def drop_next_watch(self, after_events: int = 1) -> None:
        """The next watch opened ends (cleanly) after ``after_events`` events."""
        with self._lock:
            self._watch_drops.append(after_events)

    def break_next_exec(self, after_stdin_bytes: int = 0) -> None:
        """The next exec's connection is reset once it has received ``after_stdin_bytes`` of stdin
        (an upload cut half-way: a proxy or the API server went away)."""
        with self._lock:
            self._exec_breaks.append(after_stdin_bytes)

    def drop_next_log(self, after_bytes: int = 0) -> None:
        """The next pods/log stream ends after ``after_bytes`` bytes although the container still runs."""
        with self._lock:
            self._log_drops.append(after_bytes)

    def lose_next_answer(self, verb: str, resource: str) -> None:
        """The next request matching verb/resource is carried out, then its connection is
        closed before the answer is sent (a proxy or the network lost it): the client cannot
        tell whether it happened."""
        with self._lock:
            self._lost_answers.append((verb, resource))

    def refuse_pods(self, message: str | None) -> None:
        """Admission refuses every pod a Job's controller creates, e.g. ``violates PodSecurity
        "baseline:latest": privileged (...)`` or ``exceeded quota: ...``: the Job gets FailedCreate
        Events and no pod, as on a real cluster. ``None`` lets pods through again."""
        self._cluster.jobs.refuse_pods = message

    def scale_up(self, after_s: float | None) -> None:
        """A cluster autoscaler: a pod no node fits gets a ``TriggeredScaleUp`` Event, and a node
        ``after_s`` later (a build pool scaled to zero). ``None``: none (the default)."""
        self._cluster.kubelet.scale_up_after = after_s

    def drop_watches(self, abrupt: bool = False) -> int:
        """End every open watch now; ``abrupt`` resets the connection instead. Returns how many."""
        return self._cluster.call(self._cluster.end_watches(abrupt))

    def evict(self, pod: str, namespace: str | None = None) -> None:
        """Node-pressure eviction of a running pod: containers killed, phase Failed, reason Evicted."""
        ns = namespace or self._cluster.namespace
        self._cluster.call(self._cluster.kubelet.evict(ns, pod))

    def lose_node(
        self,
        pod: str,
        evict_after: float | None = 1.0,
        namespace: str | None = None,
        disruption_target: bool = True,
    ) -> None:
        """The node running ``pod`` stops answering: the pod is marked not ready at once and,
        ``evict_after`` seconds later (``None``: not during the test), deleted by the
        taint-eviction controller, with a DisruptionTarget condition unless ``disruption_target``
        is False (clusters before 1.26); it stays Terminating with its last status, as does a
        graceful ``kubectl delete pod`` of it (nodeloss.py). :meth:`clear` brings the node back."""
        from .nodeloss import lose_node

        self._lost_node = True
        where = namespace or self._cluster.namespace
        self._cluster.call(lose_node(self._cluster, where, pod, evict_after, disruption_target))

    def expire_watch_history(self) -> None:
        """Compact the history: a watch from any older resourceVersion gets 410 Gone (Expired)."""
        self._cluster._sync(self._cluster.store.compact)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._forbidden.clear()
            self._watch_drops.clear()
            self._exec_breaks.clear()
            self._log_drops.clear()
            self._lost_answers.clear()
            self._slow.clear()
            self._unavailable = (0.0, 503)
            self.unauthorized = False
            self.latency = 0.0
        jobs = getattr(self._cluster, "jobs", None)
        if jobs is not None:
            jobs.refuse_pods = None
        kubelet = getattr(self._cluster, "kubelet", None)
        if kubelet is not None:
            kubelet.scale_up_after = None
        if self._lost_node:
            from .nodeloss import node_back

            self._lost_node = False
            store = self._cluster.store
            self._cluster._sync(
                lambda: [store.mutate("nodes", "", n["metadata"]["name"], node_back) for n in store.list("nodes")]
            )

    # -- used by the server ------------------------------------------------------------
    def take_exec_break(self) -> int | None:
        with self._lock:
            return self._exec_breaks.pop(0) if self._exec_breaks else None

    def take_log_drop(self) -> int | None:
        with self._lock:
            return self._log_drops.pop(0) if self._log_drops else None

    def take_lost_answer(self, target: Target | None) -> bool:
        with self._lock:
            if target is not None and (target.verb, target.label) in self._lost_answers:
                self._lost_answers.remove((target.verb, target.label))
                return True
            return False

    def take_delay(self, target: Target | None) -> float:
        with self._lock:
            for slow in self._slow:
                found = target is not None and slow.remaining > 0 and slow.verb in (None, target.verb)
                if found and slow.resource in (None, target.label if target else None):
                    slow.remaining -= 1
                    return slow.delay
        return 0.0

    def take_watch_drop(self) -> int | None:
        with self._lock:
            return self._watch_drops.pop(0) if self._watch_drops else None

    def take(self, target: Target | None) -> web.Response | None:
        if target is None:
            return None
        with self._lock:
            if (target.verb, target.label) in self._forbidden:
                group = target.resource.group
                where = f' in the namespace "{target.namespace}"' if target.namespace else " at the cluster scope"
                name = target.name or ""
                message = (
                    f'{target.resource.plural} "{name}" is forbidden: '
                    if name
                    else f"{target.resource.plural} is forbidden: "
                ) + f'User "{USER}" cannot {target.verb} resource "{target.label}" in API group "{group}"{where}'
                body = status(403, "Forbidden", message, {"name": name, "group": group, "kind": target.resource.plural})
                return reply(body, 403)
            until, code = self._unavailable
            if time.monotonic() < until:
                return self._failure(_Failure(1, code, None, None, 1))
            for failure in self._failures:
                if (
                    failure.remaining > 0
                    and failure.verb in (None, target.verb)
                    and failure.resource in (None, target.label)
                ):
                    failure.remaining -= 1
                    return self._failure(failure)
        return None

    @staticmethod
    def _failure(failure: _Failure) -> web.Response:
        headers: dict[str, Any] = {}
        details: dict[str, Any] = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = str(failure.retry_after)
            details["retryAfterSeconds"] = failure.retry_after
        reason, message = {
            429: ("TooManyRequests", "Too many requests, please try again later."),
            500: ("InternalError", "Internal error occurred: rtbuild fake cluster: injected fault"),
            503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
        }.get(failure.status, ("InternalError", f"injected fault {failure.status}"))
        body = status(failure.status, reason, message, details or None)
        response = reply(body, failure.status)
        response.headers.update(headers)
        return response
