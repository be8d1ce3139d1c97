"""The streaming endpoints: watches (JSON lines, resume by resourceVersion, 410 Gone, fault
drops), pods/log (from `docker logs [-f]`) and pods/exec over the websocket channel protocols
v4/v5 (from `docker exec -i`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .engine import DOCKER_CLI
from .keys import RECORD
from .selectors import FieldSelector, LabelSelector, SelectorError
from .store import ApiError, Watcher
from .tables import table, wants_table

if TYPE_CHECKING:
    from .api import Target
    from .cluster import FakeCluster

Obj = dict[str, Any]
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, CLOSE = 0, 1, 2, 3, 255
ABRUPT = "abrupt"


# -- watch --------------------------------------------------------------------------------
def _event(kind: str, obj: Obj, as_table: str | None = None) -> bytes:
    if as_table and kind != "ERROR" and obj.get("kind") != "Status":
        obj = table(as_table, [obj], obj["metadata"].get("resourceVersion", ""))
    return (json.dumps({"type": kind, "object": obj}) + "\n").encode()


async def watch(cluster: FakeCluster, request: web.Request, target: Target) -> web.StreamResponse:
    store, res = cluster.store, target.resource
    try:
        labels = LabelSelector(request.query.get("labelSelector"))
        fields = FieldSelector(request.query.get("fieldSelector"))
    except SelectorError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    if target.name:  # GET .../jobs/NAME?watch=true (old style) is a name field selector
        fields = FieldSelector(",".join(filter(None, [fields.text, f"metadata.name={target.name}"])))
    watcher = Watcher(res.plural, target.namespace, labels, fields)
    rv_text = request.query.get("resourceVersion", "")
    initial: list[tuple[str, Obj]] = []
    gone = False
    send_initial = request.query.get("sendInitialEvents") == "true"
    if rv_text in ("", "0") or send_initial:
        initial = [("ADDED", obj) for obj in store.list(res.plural, target.namespace, labels, fields)]
    else:
        try:
            events = store.since(int(rv_text))
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_text!r}") from exc
        if events is None:
            gone = True
        else:
            initial = [(kind, obj) for kind, resource, obj in events if watcher.wants(resource, obj)]
    store.watchers.append(watcher)  # same loop turn as the snapshot: no event falls in between
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    request[RECORD].status = 200
    as_table = res.plural if wants_table(request.headers.get("Accept", "")) else None
    drop_after = cluster.faults.take_watch_drop()
    cluster.open_watches.add(watcher)
    sent = 0
    try:
        if gone:
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {rv_text} ({store.resource_version})",
                "reason": "Expired",
                "code": 410,
            }
            await response.write(_event("ERROR", status))
            return response
        for kind, obj in initial:
            await response.write(_event(kind, obj, as_table))
            sent += 1
            if drop_after is not None and sent >= drop_after:
                return response
        if send_initial:
            bookmark = {
                "kind": res.kind,
                "apiVersion": res.api_version,
                "metadata": {
                    "resourceVersion": str(store.resource_version),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            }
            await response.write(_event("BOOKMARK", bookmark))
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            remaining = end - loop.time()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(watcher.queue.get(), remaining)
            except TimeoutError:
                break
            if item is None:
                break
            if item == ABRUPT:
                if request.transport is not None:
                    request.transport.abort()
                break
            await response.write(_event(item[0], item[1], as_table))
            sent += 1
            if drop_after is not None and sent >= drop_after:
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(ValueError):
            store.watchers.remove(watcher)
        cluster.open_watches.discard(watcher)
    return response


# -- containers ---------------------------------------------------------------------------
def _container(cluster: FakeCluster, pod: Obj, name: str | None, verb: str) -> tuple[str, Obj | None]:
    pod_name = pod["metadata"]["name"]
    mains = [c["name"] for c in pod["spec"]["containers"]]
    inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
    if not name:
        if len(mains) != 1:
            extra = f" or one of the init containers: [{' '.join(inits)}]" if inits else ""
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(mains)}]{extra}",
            )
        name = mains[0]
    if name not in mains + inits:
        raise ApiError(400, "BadRequest", f"container {name} is not valid for pod {pod_name}")
    statuses = (pod["status"].get("containerStatuses") or []) + (pod["status"].get("initContainerStatuses") or [])
    status = next((s for s in statuses if s["name"] == name), None)
    return name, status


async def logs(cluster: FakeCluster, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    pod = cluster.store.require("pods", namespace, name)
    container, status = _container(cluster, pod, request.query.get("container"), "log")
    cid = cluster.kubelet.container_id(namespace, name, container)
    state = (status or {}).get("state") or {}
    if cid is None or "waiting" in state or not state:
        reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
        if reason in ("ErrImagePull", "ImagePullBackOff"):
            reason = "trying and failing to pull image"
        raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    if request.query.get("previous") == "true":
        raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found')
    args = ["logs"]
    if request.query.get("follow") == "true":
        args.append("--follow")
    if request.query.get("tailLines"):
        args += ["--tail", str(int(request.query["tailLines"]))]
    if request.query.get("timestamps") == "true":
        args.append("--timestamps")
    if request.query.get("sinceSeconds"):
        args += ["--since", f"{int(request.query['sinceSeconds'])}s"]
    limit = int(request.query["limitBytes"]) if request.query.get("limitBytes") else None
    drop_after = cluster.faults.take_log_drop()
    # One pipe for both streams keeps the order docker logs writes them in.
    proc = await asyncio.create_subprocess_exec(
        DOCKER_CLI, *args, cid, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    request[RECORD].status = 200
    assert proc.stdout is not None
    ended = False  # docker logs closed its output: it is exiting, nothing to kill
    try:
        sent = 0
        while chunk := await proc.stdout.read(65536):
            if limit is not None:
                chunk = chunk[:limit]
                limit -= len(chunk)
            if drop_after is not None:
                chunk = chunk[: max(drop_after - sent, 0)]
            await response.write(chunk)
            sent += len(chunk)
            if (limit is not None and limit <= 0) or (drop_after is not None and sent >= drop_after):
                break
        else:
            ended = True
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        await _finish(proc, running=not ended)
    return response


async def _finish(proc: asyncio.subprocess.Process, *, running: bool) -> int:
    """Wait for ``proc``, killing it first only while it may still be ``running``.

    Killing a child that has exited but not been reaped yet makes ``Popen.send_signal``
    poll, which reaps it before asyncio's child watcher can: the watcher then logs
    "Unknown child process pid N" and reports exit code 255 instead of the real one.
    A child whose output ended is exiting on its own, so it is only waited for.
    """
    if proc.returncode is None and running:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    return await proc.wait()


def _exit_status(code: int, command: list[str], stderr_tail: bytes) -> Obj:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    text = stderr_tail.decode(errors="replace")
    if code in (126, 127) and "OCI runtime exec failed" in text:
        message = text[text.index("OCI runtime exec failed") :].strip()
        return {
            "metadata": {},
            "status": "Failure",
            "message": f"Internal error occurred: error executing command in container: {message}",
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command {command}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


async def exec_(cluster: FakeCluster, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    pod = cluster.store.require("pods", namespace, name)
    container, status = _container(cluster, pod, request.query.get("container"), "exec")
    cid = cluster.kubelet.container_id(namespace, name, container)
    if cid is None or "running" not in ((status or {}).get("state") or {}):
        raise ApiError(400, "BadRequest", f'unable to upgrade connection: container not found ("{container}")')
    command = request.query.getall("command", [])
    if not command:
        raise ApiError(400, "BadRequest", "you must specify at least 1 command")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=16 * 1024 * 1024, autoclose=False)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "BadRequest", "the rtbuild fake cluster serves pods/exec over websockets only (no SPDY)")
    await ws.prepare(request)
    request[RECORD].status = 101
    protocol = ws.ws_protocol or "channel.k8s.io"
    want_stdin = request.query.get("stdin") in ("true", "1")
    args = [DOCKER_CLI, "exec"] + (["-i"] if want_stdin else []) + [cid, *command]
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE if want_stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    cluster.execs.add(proc)
    output_tail = bytearray()  # docker's own "OCI runtime exec failed" text comes on either stream

    async def pump(stream: asyncio.StreamReader | None, channel: int) -> None:
        assert stream is not None
        # 32 KiB like the API server's io.Copy: clients cap websocket messages (httpx-ws at 64 KiB).
        while chunk := await stream.read(32768):
            output_tail.extend(chunk)
            del output_tail[:-4096]
            if not ws.closed:
                await ws.send_bytes(bytes((channel,)) + chunk)

    break_after = cluster.faults.take_exec_break()
    received = 0
    outputs_ended = False  # both pumps saw EOF: docker exec is exiting on its own

    async def read_client() -> None:
        nonlocal received
        async for message in ws:
            if message.type != WSMsgType.BINARY or not message.data:
                continue
            channel, data = message.data[0], message.data[1:]
            if channel == STDIN and break_after is not None and received + len(data) >= break_after:
                if request.transport is not None:  # the injected fault: connection reset mid-upload
                    request.transport.abort()
                break
            if channel == STDIN and want_stdin and proc.stdin is not None and not proc.stdin.is_closing():
                received += len(data)
                proc.stdin.write(data)
                await proc.stdin.drain()
            elif channel == CLOSE and data[:1] == bytes((STDIN,)) and protocol.startswith("v5") and proc.stdin:
                proc.stdin.close()
        # The client went away: nobody reads the output any more.
        if proc.returncode is None and not outputs_ended:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    reader = asyncio.get_running_loop().create_task(read_client())
    try:
        await asyncio.gather(pump(proc.stdout, STDOUT), pump(proc.stderr, STDERR))
        outputs_ended = True
        code = await proc.wait()
        if not ws.closed:
            body = _exit_status(code, command, bytes(output_tail))
            if protocol in ("v4.channel.k8s.io", "v5.channel.k8s.io"):
                await ws.send_bytes(bytes((ERROR,)) + json.dumps(body).encode())
            elif code != 0:
                await ws.send_bytes(bytes((ERROR,)) + body.get("message", "").encode())
            await ws.close()
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await _finish(proc, running=not outputs_ended)
        cluster.execs.discard(proc)
    return ws
