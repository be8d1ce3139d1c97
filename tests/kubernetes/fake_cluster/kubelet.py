"""The fake's "kubelet": schedules each pod on its one node, then runs its init containers in
order and its containers together in the local dockerd, and reports their states in the pod's
status the way a kubelet does (waiting reasons, running, terminated with exit code, reason and
termination message)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .engine import DOCKER_CLI, LABEL, PID_LABEL, Engine, EngineError
from .events import record_event
from .images import ensure_image
from .nodes import HOST_ARCH, NODE, schedule
from .podspec import ConfigError, create_body, prepare_volumes
from .podstatus import condition, set_container_status, stamp, waiting
from .store import Store, now

Obj = dict[str, Any]
PodKey = tuple[str, str]
MAX_MESSAGE = 4096


def _running(pod: Obj) -> None:
    """Phase Running once a container runs (all were created first); Ready when all run."""
    statuses = pod["status"].get("containerStatuses") or []
    if any("running" in s["state"] for s in statuses):
        pod["status"]["phase"] = "Running"
    if statuses and all("running" in s["state"] for s in statuses):
        condition(pod["status"], "ContainersReady", True)
        condition(pod["status"], "Ready", True)


class Kubelet:
    def __init__(
        self,
        store: Store,
        engine: Engine,
        workdir: Path,
        cluster_id: str,
        enforce_limits: bool,
        archs: tuple[str, ...] = (HOST_ARCH,),
    ) -> None:
        self.store, self.engine, self.workdir, self.cluster_id = store, engine, workdir, cluster_id
        self.archs = archs
        #: A cluster autoscaler: a pod no node fits gets a TriggeredScaleUp Event and, this many
        #: seconds later, a node (this host's, whatever the pod's selector). None: no autoscaler.
        self.scale_up_after: float | None = None
        self.enforce_limits = enforce_limits
        self.tasks: dict[PodKey, asyncio.Task[None]] = {}
        self.containers: dict[PodKey, dict[str, str]] = {}  # container name -> docker id
        self.on_pod_finished: list[Callable[[Obj], None]] = []
        self.creating: dict[PodKey, tuple[str, Obj]] = {}  # the container being created, for errors
        self.inflight: dict[PodKey, set[asyncio.Task[str]]] = {}  # container creates under way

    # -- public ------------------------------------------------------------------------
    def start(self, namespace: str, name: str) -> None:
        self.tasks[(namespace, name)] = asyncio.get_running_loop().create_task(self._run(namespace, name))

    def container_id(self, namespace: str, pod: str, container: str) -> str | None:
        return self.containers.get((namespace, pod), {}).get(container)

    async def stop_pod(self, namespace: str, name: str, grace: int) -> None:
        """Kill the pod's containers (SIGTERM, SIGKILL after ``grace`` seconds); keep the status."""
        task = self.tasks.pop((namespace, name), None)
        pod = self.store.get("pods", namespace, name)
        for container in self.containers.get((namespace, name), {}):
            if pod is not None:
                record_event(self.store, pod, "Killing", f"Stopping container {container}")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        ids = list(self.containers.get((namespace, name), {}).values())
        await asyncio.gather(*(self.engine.stop(cid, grace) for cid in ids), return_exceptions=True)

    async def delete_pod(self, namespace: str, name: str, grace: int) -> None:
        """The real deletion: containers stopped and removed, host dirs gone, object removed."""
        if grace > 0:
            self.store.mutate("pods", namespace, name, lambda p: p["metadata"].setdefault("deletionTimestamp", now()))
        await self.stop_pod(namespace, name, grace)
        await asyncio.gather(*self.inflight.pop((namespace, name), set()), return_exceptions=True)
        ids = set(self.containers.pop((namespace, name), {}).values())
        self.creating.pop((namespace, name), None)
        await asyncio.gather(*(self.engine.remove(cid) for cid in ids), return_exceptions=True)
        shutil.rmtree(self._pod_dir(namespace, name), ignore_errors=True)
        self.store.remove("pods", namespace, name)

    async def evict(self, namespace: str, name: str) -> None:
        """Node-pressure eviction: containers killed at once, the pod Failed with reason Evicted."""
        await self.stop_pod(namespace, name, 0)
        message = "The node was low on resource: ephemeral-storage. (rtbuild fake cluster: evicted by a test)"

        def evicted(pod: Obj) -> None:
            status = pod["status"]
            status.update({"phase": "Failed", "reason": "Evicted", "message": message})
            condition(status, "DisruptionTarget", True, "TerminationByKubelet", message)
            condition(status, "Ready", False, "PodFailed")
            condition(status, "ContainersReady", False, "PodFailed")
            for cs in status.get("containerStatuses") or []:
                if "terminated" not in cs["state"]:
                    cs["state"] = {"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now()}}
                    cs["ready"] = False

        pod = self.store.mutate("pods", namespace, name, evicted)
        if pod is not None:
            record_event(self.store, pod, "Evicted", message, "Warning")
            self._finished(pod)

    # -- the pod worker ----------------------------------------------------------------
    def _pod_dir(self, namespace: str, name: str) -> Path:
        return self.workdir / "pods" / namespace / name

    def _update(self, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj | None:
        return self.store.mutate("pods", namespace, name, change)

    def _finished(self, pod: Obj) -> None:
        for callback in self.on_pod_finished:
            callback(pod)

    async def _run(self, namespace: str, name: str) -> None:
        pod = self.store.get("pods", namespace, name)
        if pod is None:
            return
        spec = pod["spec"]
        node, message = schedule(spec, self.archs)
        if node is None:
            pod = self._update(
                namespace, name, lambda p: condition(p["status"], "PodScheduled", False, "Unschedulable", message)
            )
            if pod is not None:
                record_event(self.store, pod, "FailedScheduling", message, "Warning", "default-scheduler")
            if pod is None or self.scale_up_after is None:
                return
            scale_up = "pod triggered scale-up: [{rtbuild-fake-pool 0->1 (max: 3)}]"
            record_event(self.store, pod, "TriggeredScaleUp", scale_up, "Normal", "cluster-autoscaler")
            await asyncio.sleep(self.scale_up_after)
            node = NODE
        init, main = spec.get("initContainers") or [], spec["containers"]

        def scheduled(p: Obj) -> None:
            p["spec"]["nodeName"] = node
            status = p["status"]
            status.update({"hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}], "startTime": now()})
            status.update({"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]})
            condition(status, "PodScheduled", True)
            condition(status, "PodReadyToStartContainers", True)
            condition(status, "Initialized", not init, None if not init else "ContainersNotInitialized")
            condition(status, "Ready", False, "ContainersNotReady")
            condition(status, "ContainersReady", False, "ContainersNotReady")
            first = "PodInitializing" if init else "ContainerCreating"
            status["initContainerStatuses"] = [waiting(c, "PodInitializing") for c in init] or None
            status["containerStatuses"] = [waiting(c, first) for c in main]
            if not init:
                status.pop("initContainerStatuses")

        pod = self._update(namespace, name, scheduled)
        if pod is None:
            return
        record_event(
            self.store,
            pod,
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {node}",
            "Normal",
            "default-scheduler",
        )
        deadline = spec.get("activeDeadlineSeconds")
        try:
            async with asyncio.timeout(deadline):
                await self._run_containers(pod, init, main)
        except TimeoutError:
            await self._deadline(namespace, name)
        except EngineError as exc:  # dockerd refused to create the container: the kubelet's CreateContainerError
            record_event(self.store, pod, "Failed", f"Error: {exc.message}", "Warning")
            failing = self.creating.get((namespace, name))
            if failing is not None:
                group, container = failing
                set_container_status(self.store, pod, group, waiting(container, "CreateContainerError", exc.message))
        except Exception as exc:  # a bug in the fake: say so loudly in the pod's events and on stderr
            traceback.print_exc(file=sys.stderr)
            record_event(self.store, pod, "FakeClusterBug", repr(exc), "Warning")

    async def _run_containers(self, pod: Obj, init: list[Obj], main: list[Obj]) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        root = self._pod_dir(namespace, name)
        root.mkdir(parents=True, exist_ok=True)
        volumes = await self._volumes(pod, root)
        for container in init:
            code = await self._start_and_wait(pod, container, "initContainerStatuses", volumes, root)
            if code != 0:
                self._phase(namespace, name, "Failed", init_failed=True)
                return
        self._update(namespace, name, lambda p: condition(p["status"], "Initialized", True))
        ids = [await self._create(pod, c, "containerStatuses", volumes, root) for c in main]
        started = [await self._start(pod, c, "containerStatuses", cid) for c, cid in zip(main, ids, strict=True)]
        codes = await asyncio.gather(
            *(
                self._wait(pod, c, "containerStatuses", cid, root)
                for c, cid, ok in zip(main, ids, started, strict=True)
                if ok
            )
        )
        codes += [128 for ok in started if not ok]
        self._phase(namespace, name, "Succeeded" if all(code == 0 for code in codes) else "Failed")

    async def _volumes(self, pod: Obj, root: Path) -> dict[str, Path]:
        while True:
            try:
                return prepare_volumes(self.store, pod, root)
            except ConfigError as exc:
                record_event(self.store, pod, "FailedMount", str(exc), "Warning")
                await self._store_change(2.0)

    async def _store_change(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.store.changed.wait(), timeout)

    async def _create(self, pod: Obj, container: Obj, group: str, volumes: dict[str, Path], root: Path) -> str:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        image_id = await ensure_image(self.store, self.engine, pod, container, group)
        termination = root / "termination" / container["name"]
        termination.parent.mkdir(parents=True, exist_ok=True)
        termination.write_bytes(b"")
        termination.chmod(0o666)
        labels = {
            LABEL: self.cluster_id,
            PID_LABEL: str(os.getpid()),
            "io.kubernetes.pod.namespace": namespace,
            "io.kubernetes.pod.name": name,
            "io.kubernetes.container.name": container["name"],
        }
        while True:
            try:
                body = create_body(self.store, pod, container, volumes, termination, labels, self.enforce_limits)
                break
            except ConfigError as exc:
                set_container_status(self.store, pod, group, waiting(container, "CreateContainerConfigError", str(exc)))
                record_event(self.store, pod, "Failed", f"Error: {exc}", "Warning")
                await self._store_change(2.0)
        cname = f"rtbuild-fake-{self.cluster_id}-{name}-{container['name']}-{uuid.uuid4().hex[:6]}"
        self.creating[(namespace, name)] = (group, container)

        async def create_and_register() -> str:
            cid = await self.engine.create(cname, body)
            self.containers.setdefault((namespace, name), {})[container["name"]] = cid
            return cid

        # Shielded: when the pod is deleted mid-create, dockerd still makes the container; the
        # deletion waits for this task so that it knows the id and removes it too.
        create = asyncio.get_running_loop().create_task(create_and_register())
        self.inflight.setdefault((namespace, name), set()).add(create)
        create.add_done_callback(self.inflight[(namespace, name)].discard)
        cid = await asyncio.shield(create)
        status = waiting(container, "ContainerCreating")
        status["imageID"] = f"docker://{image_id}"
        set_container_status(self.store, pod, group, status)
        record_event(self.store, pod, "Created", f"Created container {container['name']}")
        return cid

    async def _mark_running(self, pod: Obj, container: Obj, group: str, cid: str) -> None:
        info = await self.engine.inspect(cid) or {}
        started = stamp((info.get("State") or {}).get("StartedAt")) or now()
        record_event(self.store, pod, "Started", f"Started container {container['name']}")
        set_container_status(
            self.store,
            pod,
            group,
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": f"docker://{info.get('Image', '')}",
                "containerID": f"docker://{cid}",
                "ready": group == "containerStatuses",
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": started}},
            },
            then=_running if group == "containerStatuses" else None,
        )

    async def _start_and_wait(self, pod: Obj, container: Obj, group: str, volumes: dict[str, Path], root: Path) -> int:
        cid = await self._create(pod, container, group, volumes, root)
        if not await self._start(pod, container, group, cid):
            return 128
        return await self._wait(pod, container, group, cid, root)

    async def _start(self, pod: Obj, container: Obj, group: str, cid: str) -> bool:
        """Start the container; a start failure (e.g. no such executable) is the kubelet's StartError."""
        try:
            await self.engine.start(cid)
        except EngineError as exc:
            record_event(self.store, pod, "Failed", f"Error: {exc.message}", "Warning")
            terminated = {"exitCode": 128, "reason": "StartError", "message": exc.message, "finishedAt": now(),
                          "containerID": f"docker://{cid}"}  # fmt: skip
            status = waiting(container, "")
            status.update({"containerID": f"docker://{cid}", "state": {"terminated": terminated}})
            set_container_status(self.store, pod, group, status)
            return False
        await self._mark_running(pod, container, group, cid)
        return True

    async def _wait(self, pod: Obj, container: Obj, group: str, cid: str, root: Path) -> int:
        code = await self.engine.wait(cid)
        info = await self.engine.inspect(cid) or {}
        state = info.get("State") or {}
        code = int(state.get("ExitCode", code))
        reason = "OOMKilled" if state.get("OOMKilled") else ("Completed" if code == 0 else "Error")
        message = (root / "termination" / container["name"]).read_bytes()[:MAX_MESSAGE].decode(errors="replace")
        if not message and code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = await self._log_tail(cid)
        terminated: Obj = {
            "exitCode": code,
            "reason": reason,
            "startedAt": stamp(state.get("StartedAt")),
            "finishedAt": stamp(state.get("FinishedAt")) or now(),
            "containerID": f"docker://{cid}",
        }
        if message:
            terminated["message"] = message
        set_container_status(
            self.store,
            pod,
            group,
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": f"docker://{info.get('Image', '')}",
                "containerID": f"docker://{cid}",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"terminated": terminated},
            },
        )
        return code

    async def _log_tail(self, cid: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            DOCKER_CLI, "logs", "--tail", "80", cid, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        return out[-2048:].decode(errors="replace")

    def _phase(self, namespace: str, name: str, phase: str, init_failed: bool = False) -> None:
        def change(p: Obj) -> None:
            status = p["status"]
            status["phase"] = phase
            condition(status, "Ready", False, "PodCompleted" if phase == "Succeeded" else "PodFailed")
            condition(status, "ContainersReady", False, "PodCompleted" if phase == "Succeeded" else "PodFailed")
            if init_failed:
                for cs in status.get("containerStatuses") or []:
                    cs["state"] = {"waiting": {"reason": "PodInitializing"}}

        pod = self._update(namespace, name, change)
        if pod is not None:
            self._finished(pod)

    async def _deadline(self, namespace: str, name: str) -> None:
        ids = list(self.containers.get((namespace, name), {}).values())
        await asyncio.gather(*(self.engine.kill(cid) for cid in ids), return_exceptions=True)
        message = "Pod was active on the node longer than the specified deadline"

        def change(p: Obj) -> None:
            p["status"].update({"phase": "Failed", "reason": "DeadlineExceeded", "message": message})

        pod = self._update(namespace, name, change)
        if pod is not None:
            record_event(self.store, pod, "DeadlineExceeded", message, "Normal")
            self._finished(pod)
