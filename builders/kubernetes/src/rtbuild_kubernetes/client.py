"""The small cluster interface the builder needs, and its lightkube implementation.

Everything the builder does to a cluster goes through :class:`KubeClient`, with plain
dicts in and out, so the Job machinery does not depend on lightkube's models and a test
can stand in a recording client. lightkube is imported only in :func:`connect`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import time
from collections.abc import Callable, Generator, Iterator
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

from rtbuild import AgentRuntimeBuildError

from .clusterauth import auth_error
from .execstatus import V4, V5, send_stdin, upgrade_error
from .failures import (
    KubernetesBuildError,
    ObjectGoneError,
    mark_no_effect,
    namespace_missing_error,
)

if TYPE_CHECKING:
    from .settings import Settings

T = TypeVar("T")
#: Throttling (429) and server errors are retried this often, honouring Retry-After up to 5 s.
RETRIES = 4
#: An API server that answered before and now refuses connections or answers 429/502/503/504
#: (APF under load, a restart, a failover) is retried for this long before the build gives up. Once a call has
#: given up, the next ones (the clean-up of the failed build) fail at once until one succeeds:
#: each would otherwise wait out an outage of its own.
OUTAGE_S = 60.0
OUTAGE_PAUSE_S = 1.0
#: How long an answer is waited for (APF queueing, webhooks of up to 30 s; the server's limit: 60 s).
READ_TIMEOUT_S = 75.0


class KubeClient(Protocol):
    namespace: str
    gave_up: bool  # set: calls do not wait out an API outage (after one did in vain, or an interrupt)
    stopping: bool  # set on Ctrl-C/SIGTERM: no call waits out an outage again, even one already waiting

    def create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, kind: str, name: str, *, propagation: str = "Background") -> bool: ...
    def get(self, kind: str, name: str) -> dict[str, Any] | None: ...
    def list_pods(self, selector: dict[str, str]) -> tuple[list[dict[str, Any]], str]: ...
    def watch_pods(
        self, selector: dict[str, str], resource_version: str
    ) -> Generator[tuple[str, dict[str, Any]], None, None]: ...
    def events(self, pod: str) -> list[dict[str, Any]]: ...
    def follow_log(
        self, pod: str, container: str, *, timestamps: bool = False, since_seconds: int | None = None
    ) -> Iterator[str]: ...
    def exec_stdin(self, pod: str, container: str, command: list[str], stream: IO[bytes], size: int) -> int: ...


_RESOURCES = {"Job": ("batch", "jobs"), "Secret": ("", "secrets"), "Pod": ("", "pods")}

#: What :meth:`LightkubeClient.watch_pods` yields after :data:`TICK_S` without an event.
TICK = "TICK"
TICK_S = 1.0


class LightkubeClient:
    """:class:`KubeClient` over lightkube (sync client)."""

    #: exec websocket subprotocols, preferred first (tests pin v4 to exercise the byte guard).
    subprotocols: tuple[str, ...] = (V5, V4)

    def __init__(self, settings: Settings) -> None:
        import httpx2
        import yaml
        from lightkube import Client, KubeConfig
        from lightkube.core.exceptions import ConfigError as KubeConfigError

        from .kubeconfigerror import kubeconfig_error, load_unquoted

        where = "the in-cluster service account" if settings.in_cluster else _kubeconfig_name(settings)
        try:
            if settings.in_cluster:
                config = KubeConfig.from_service_account()
            else:  # malformed YAML: a ConfigError chained to nothing (PyYAML's text quotes the lines)
                config = load_unquoted(settings.kubeconfig, where)
            single = config.get(context_name=settings.context)
            if single is None:
                raise KeyError(f"context {settings.context!r} not found")
            namespace = settings.namespace or single.namespace or "default"
            # Client() reads the CA, certificate and key files: a missing one is the kubeconfig's fault
            # too. Its answers are waited for READ_TIMEOUT_S (lightkube's default: 10 s).
            wait = httpx2.Timeout(10.0, read=READ_TIMEOUT_S)
            client = Client(config=single, namespace=namespace, trust_env=False, field_manager="rtbuild", timeout=wait)
        except (KubeConfigError, OSError, KeyError, ValueError, yaml.YAMLError, AttributeError, TypeError) as exc:
            raise kubeconfig_error(exc, where) from exc
        from .kubeauth import install

        install(client, single.user, _kubeconfig_name(settings))  # exec plugins as kubectl's; tokenFile checked
        self.namespace = namespace
        self.server = single.cluster.server
        self._client = client
        self.reached = False  # whether the API server has answered (then a refusal is an outage)
        self.gave_up = False  # whether a call waited out OUTAGE_S in vain (then the next ones do not wait)
        #: Ctrl-C/SIGTERM: the clean-up must not wait out an outage. Never reset (an answer
        #: to another call reset gave_up, and a delete already in its outage window waited
        #: 60 s: 62 DELETEs, 1 run in 11 of the interrupt test); read on every retry.
        self.stopping = False

    # --- error mapping -----------------------------------------------------------------

    def _call(self, verb: str, resource: str, fn: Callable[[], T]) -> T:
        import httpx2
        from lightkube import ApiError

        # Whether an attempt may have been carried out although it failed (its answer lost, or
        # a server error): the error then says nothing about what the server did.
        uncertain = False
        outage_ends: float | None = None
        attempt = -1
        while True:
            attempt += 1
            try:
                result = fn()
                self.reached, self.gave_up = True, False
                return result
            except ApiError as exc:
                code = exc.status.code or 0
                # 429/502/503/504 from a server that answered before (APF under load, a restart
                # behind a load balancer) are waited for as a refused connection is.
                down = code in (429, 502, 503, 504) and self.reached
                if down:
                    outage_ends = outage_ends or time.monotonic() + (0.0 if self.gave_up else OUTAGE_S)
                waiting = down and not self.stopping and time.monotonic() < (outage_ends or 0.0)
                # given up: fail at once
                again = attempt < RETRIES and not (down and (self.gave_up or self.stopping))
                if code in (429, 500, 502, 503, 504) and (again or waiting):
                    uncertain = uncertain or code != 429
                    retry_after = getattr(getattr(exc, "response", None), "headers", {}).get("Retry-After", "1")
                    time.sleep(min(float(retry_after) if str(retry_after).isdigit() else 1.0, 5.0))
                    continue
                self.gave_up = self.gave_up or down
                kind = getattr(exc.status.details, "kind", None)
                error = self._api_error(verb, resource, code, exc.status.message or str(exc), kind)
                raise mark_no_effect(error, not uncertain and 400 <= code < 500) from exc
            except httpx2.HTTPError as exc:
                # Once more on a dropped keep-alive connection (the server closed it between
                # requests) or a failed connect/TLS handshake: neither reached the API server.
                retry = (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.ConnectError)
                never_sent = isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout))
                if attempt < 1 and isinstance(exc, retry):
                    uncertain = uncertain or not never_sent
                    continue
                if self.reached and isinstance(exc, (*retry, httpx2.ConnectTimeout)):
                    # It answered before: wait for it (a misconfigured server fails at once).
                    outage_ends = outage_ends or time.monotonic() + (0.0 if self.gave_up else OUTAGE_S)
                    if not self.stopping and time.monotonic() < outage_ends:
                        uncertain = uncertain or not never_sent
                        time.sleep(OUTAGE_PAUSE_S)
                        continue
                    self.gave_up = True
                from .kubeauth import unreachable_error  # or not trusted: a certificate kubectl refuses too

                unreachable = unreachable_error(exc, self.server, f"{verb} {resource}")
                raise mark_no_effect(unreachable, not uncertain and never_sent) from exc

    def _api_error(self, verb: str, resource: str, code: int, message: str, kind: str | None) -> AgentRuntimeBuildError:
        if code in (401, 403):
            return auth_error(verb, resource, code, message, self.namespace)
        if code == 404 and kind == "namespaces":
            return namespace_missing_error(self.namespace, self.server, f"{verb} {resource}")
        return (ObjectGoneError if code == 404 else KubernetesBuildError)(
            f"the Kubernetes API refused to {verb} {resource}: HTTP {code}: {message}",
            step=f"{verb} {resource}",
            hint="see the message above; `kubectl get events` in the namespace may say more",
        )

    # --- resources ---------------------------------------------------------------------

    def _model(self, kind: str) -> Any:
        from lightkube.resources.batch_v1 import Job
        from lightkube.resources.core_v1 import Event, Pod, Secret

        return {"Job": Job, "Secret": Secret, "Pod": Pod, "Event": Event}[kind]

    def create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        from lightkube import ApiError

        model = self._model(kind)
        attempts = 0

        def run() -> Any:
            nonlocal attempts
            attempts += 1
            try:
                return self._client.create(model.from_dict(obj))
            except ApiError as exc:
                # A retry (the first attempt's answer was lost) that meets AlreadyExists: the
                # first attempt created it (names carry the build id, so nobody else did).
                if exc.status.code == 409 and attempts > 1:
                    return self._client.get(model, obj["metadata"]["name"])
                raise

        return _as_dict(self._call("create", _RESOURCES[kind][1], run))

    def delete(self, kind: str, name: str, *, propagation: str = "Background") -> bool:
        """Delete ``name``; ``False`` when it was already gone."""
        from lightkube import ApiError
        from lightkube.types import CascadeType

        policy = CascadeType.FOREGROUND if propagation == "Foreground" else CascadeType.BACKGROUND
        model = self._model(kind)

        def run() -> bool:
            try:
                self._client.delete(model, name, grace_period=0, cascade=policy)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
                return False
            return True

        return self._call("delete", _RESOURCES[kind][1], run)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        from lightkube import ApiError

        model = self._model(kind)

        def run() -> dict[str, Any] | None:
            try:
                return _as_dict(self._client.get(model, name))
            except ApiError as exc:
                if exc.status.code == 404:
                    return None
                raise

        return self._call("get", _RESOURCES[kind][1], run)

    def list_pods(self, selector: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
        from lightkube.resources.core_v1 import Pod

        def run() -> tuple[list[dict[str, Any]], str]:
            listing = self._client.list(Pod, labels=dict(selector))
            pods = [_as_dict(pod) for pod in listing]
            return pods, str(getattr(listing, "resourceVersion", "") or "")

        return self._call("list", "pods", run)

    def watch_pods(
        self, selector: dict[str, str], resource_version: str
    ) -> Generator[tuple[str, dict[str, Any]], None, None]:
        from lightkube.resources.core_v1 import Pod

        stream = self._call(
            "watch",
            "pods",
            lambda: iter(self._client.watch(Pod, labels=dict(selector), resource_version=resource_version or None)),
        )
        import queue
        import threading

        import httpx2
        from lightkube import ApiError

        # lightkube's watch re-opens a watch the server ended and reads with no timeout, so
        # a pod that stops changing would give the caller no chance to see its deadline
        # pass: a thread reads, and a quiet second yields TICK instead.
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = threading.Event()

        def read() -> None:
            try:
                for item in stream:
                    if stop.is_set():
                        break
                    items.put(item)
            except (httpx2.HTTPError, ApiError):
                pass  # a dropped or expired watch: the caller lists again and opens a new one
            except BaseException as exc:
                items.put(exc)
            finally:
                items.put(None)
                close = getattr(stream, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        close()

        # Once stopped, the thread ends with the next event (the Job's deletion brings one).
        threading.Thread(target=read, name="rtbuild-k8s-watch", daemon=True).start()
        try:
            while True:
                try:
                    item = items.get(timeout=TICK_S)
                except queue.Empty:
                    yield TICK, {}
                    continue
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                kind, pod = item
                yield kind, _as_dict(pod)
        finally:
            stop.set()

    def events(self, pod: str) -> list[dict[str, Any]]:
        from lightkube.resources.core_v1 import Event

        return self._call(
            "list",
            "events",
            lambda: [_as_dict(e) for e in self._client.list(Event, fields={"involvedObject.name": pod})],
        )

    def follow_log(
        self, pod: str, container: str, *, timestamps: bool = False, since_seconds: int | None = None
    ) -> Iterator[str]:
        """The log's lines. With ``timestamps`` each starts with its RFC 3339 time and a space and
        keeps its newline: a last line without one was cut (the stream ended in its middle)."""
        options: dict[str, Any] = {"container": container, "follow": True, "timestamps": timestamps}
        lines = self._call("get", "pods/log", lambda: self._client.log(pod, since=since_seconds, **options))
        while True:
            line = self._call("get", "pods/log", lambda: next(lines, None))
            if line is None:
                return
            yield line if timestamps else line.rstrip("\n")

    def exec_stdin(self, pod: str, container: str, command: list[str], stream: IO[bytes], size: int) -> int:
        """Send ``size`` bytes of ``stream`` to ``command``'s stdin; its exit code.

        v5 closes stdin explicitly; over v4 (no close signal) the command must read exactly
        ``size`` bytes itself (the byte-count guard), and nothing more is sent.
        """
        from httpx2.websockets import WebSocketUpgradeError
        from lightkube.core.websocket import connect_ws
        from lightkube.resources.core_v1 import Pod

        generic = self._client._client  # lightkube's generic client: builds the exec URL
        params = {"command": command, "container": container, "stdin": True, "stdout": True, "stderr": True}
        request = generic.prepare_request("exec", Pod, None, pod, self.namespace, params=params)
        opening = (request.url, generic._client, list(self.subprotocols))
        ends = time.monotonic() + OUTAGE_S  # 429/502/503/504: an outage, as for every other call
        for attempt in itertools.count():  # a throttled or failed upgrade sent nothing: ask again
            try:
                return send_stdin(functools.partial(connect_ws, *opening, params=request.params), stream, size)
            except WebSocketUpgradeError as exc:
                code = exc.response.status_code
                down = code in (429, 502, 503, 504) and time.monotonic() < ends
                if code not in (429, 500, 502, 503, 504) or (attempt >= RETRIES and not down):
                    raise upgrade_error(exc, self.namespace) from exc
                retry_after = exc.response.headers.get("Retry-After", "1")
                time.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, 5.0))
        raise AssertionError("unreachable")


def _kubeconfig_name(settings: Settings) -> str:
    import os

    return settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    return dict(obj.to_dict())


def connect(settings: Settings) -> KubeClient:
    return LightkubeClient(settings)


__all__ = ["KubeClient", "LightkubeClient", "auth_error", "connect"]
