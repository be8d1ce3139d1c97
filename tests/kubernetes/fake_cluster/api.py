"""The HTTP side: request parsing (verb, resource, namespace, name, subresource), the
middleware (request record, bearer token, fault switches, Status errors), discovery, and the
generic create/get/list/watch/update/patch/delete of the resource table."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from . import podio
from .keys import RECORD, TARGET
from .patch import json_patch, merge
from .podstatus import condition
from .resources import (
    BY_PATH,
    Resource,
    error_status,
    label_job,
    prepare_job,
    prepare_pod,
    prepare_secret,
    strip_for_list,
)
from .selectors import FieldSelector, LabelSelector, SelectorError
from .store import ApiError, not_found, now
from .tables import table, wants_table

if TYPE_CHECKING:
    from .cluster import FakeCluster

Obj = dict[str, Any]


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    verb: str
    resource: str  # "jobs", "pods/log", "pods/exec", "" for discovery
    namespace: str | None
    name: str | None
    user_agent: str
    status: int | None = None
    time: float = field(default_factory=lambda: asyncio.get_running_loop().time())


@dataclass
class Target:
    resource: Resource
    namespace: str | None
    name: str | None
    sub: str | None
    verb: str

    @property
    def label(self) -> str:
        return f"{self.resource.plural}/{self.sub}" if self.sub else self.resource.plural


def parse(request: web.Request) -> Target | None:
    segs = [s for s in request.path.split("/") if s]
    if len(segs) >= 3 and segs[0] == "api":
        group, version, rest = "", segs[1], segs[2:]
    elif len(segs) >= 4 and segs[0] == "apis":
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return None
    namespace = name = sub = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, plural = rest[1], rest[2]
        name = rest[3] if len(rest) > 3 else None
        sub = rest[4] if len(rest) > 4 else None
    else:
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
    resource = BY_PATH.get((group, version, plural))
    if resource is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    method = request.method
    if sub == "exec" or sub == "eviction":
        verb = "create"
    elif method == "GET":
        watch = request.query.get("watch", "") in ("true", "1")
        verb = "get" if name else ("watch" if watch else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "")
        if method == "DELETE":
            verb = "delete" if name else "deletecollection"
    return Target(resource, namespace, name, sub, verb)


def reply(obj: Any, code: int = 200) -> web.Response:
    # Exactly "application/json" like the API server (no charset): lightkube matches it verbatim.
    return web.Response(status=code, body=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})


def make_middleware(cluster: FakeCluster) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        record = RequestRecord(
            request.method, request.path, dict(request.query), "", "", None, None, request.headers.get("User-Agent", "")
        )
        request[RECORD] = record
        cluster.records.append(record)
        try:
            target = parse(request)
            if target is not None:
                record.verb, record.resource = target.verb, target.label
                record.namespace, record.name = target.namespace, target.name
                request[TARGET] = target
            token = request.headers.get("Authorization", "")
            if cluster.faults.unauthorized or token != f"Bearer {cluster.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if cluster.faults.latency:
                await asyncio.sleep(cluster.faults.latency)
            late = cluster.faults.take_delay(target)  # carried out now, answered late
            injected = cluster.faults.take(target)
            if injected is not None:
                record.status = injected.status
                return injected
            response = await handler(request)
            if late:
                await asyncio.sleep(late)
            if cluster.faults.take_lost_answer(target) and request.transport is not None:
                record.status = 0  # done, but the client never hears of it
                request.transport.close()
        except ApiError as exc:
            response = reply(error_status(exc), exc.code)
        except web.HTTPException as exc:
            response = exc
        if record.status is None:
            record.status = response.status
        return response

    return middleware


# -- resources ----------------------------------------------------------------------------
class Handlers:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster, self.store = cluster, cluster.store

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        target: Target = request[TARGET]
        if target.resource.namespaced and target.namespace is None and target.name is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if target.sub in ("log", "exec"):
            if target.resource.plural != "pods" or not target.name:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if target.sub == "log":
                return await podio.logs(self.cluster, request, target.namespace or "", target.name)
            return await podio.exec_(self.cluster, request, target.namespace or "", target.name)
        if target.sub == "eviction":
            return await self.evict_api(target)
        verb = target.verb
        if verb == "watch":
            return await podio.watch(self.cluster, request, target)
        if verb == "list":
            return self.list(request, target)
        if verb == "get":
            obj = self._get(target)
            if wants_table(request.headers.get("Accept", "")):
                return reply(table(target.resource.plural, [obj], obj["metadata"]["resourceVersion"]))
            return reply(obj)
        if verb == "create":
            return await self.create(request, target)
        if verb in ("update", "patch"):
            return await self.update(request, target)
        if verb == "delete":
            return await self.delete(request, target)
        if verb == "deletecollection":
            for obj in self.list_objects(request, target):
                name = obj["metadata"]["name"]
                await self.delete(request, Target(target.resource, target.namespace, name, None, "delete"))
            return reply({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _get(self, target: Target) -> Obj:
        obj = self.store.require(
            target.resource.plural, target.namespace or "", target.name or "", target.resource.group
        )
        return obj

    def list_objects(self, request: web.Request, target: Target) -> list[Obj]:
        try:
            labels = LabelSelector(request.query.get("labelSelector"))
            fields = FieldSelector(request.query.get("fieldSelector"))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc
        return self.store.list(target.resource.plural, target.namespace, labels, fields)

    def list(self, request: web.Request, target: Target) -> web.Response:
        items = self.list_objects(request, target)
        if wants_table(request.headers.get("Accept", "")):
            return reply(table(target.resource.plural, items, str(self.store.resource_version)))
        return reply(
            {
                "kind": f"{target.resource.kind}List",
                "apiVersion": target.resource.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": [strip_for_list(item) for item in items],
            }
        )

    async def _body(self, request: web.Request) -> Any:
        text = await request.text()
        if not text:
            return None
        try:
            if "yaml" in request.content_type:
                return yaml.safe_load(text)
            return json.loads(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from exc

    def _check_namespace(self, target: Target) -> None:
        if target.resource.namespaced and self.store.get("namespaces", "", target.namespace or "") is None:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{target.namespace}" not found',
                {"name": target.namespace, "kind": "namespaces"},
            )

    async def create(self, request: web.Request, target: Target, body: Obj | None = None) -> web.Response:
        obj = body if body is not None else await self._body(request)
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        res = target.resource
        if obj.get("kind") not in (None, res.kind) or obj.get("apiVersion") not in (None, res.api_version):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj.get('apiVersion')}) does not match "
                f"the expected API version ({res.api_version})",
            )
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        meta = obj.setdefault("metadata", {})
        for server_owned in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "managedFields"):
            meta.pop(server_owned, None)
        if target.namespace and meta.get("namespace") not in (None, "", target.namespace):
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        self._check_namespace(target)
        if res.plural == "jobs":
            prepare_job(obj)
            meta["uid"] = str(uuid.uuid4())
            meta.setdefault("name", meta.get("name") or "")
            if not meta["name"] and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            label_job(obj)
        elif res.plural == "pods":
            prepare_pod(obj)
        elif res.plural == "secrets":
            prepare_secret(obj)
        elif res.plural == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        if request.query.get("dryRun"):
            return reply(obj, 201)
        created = self.store.create(res.plural, target.namespace or "", obj, res.group)
        if res.plural == "jobs":
            self.cluster.jobs.job_created(created)
        elif res.plural == "pods":
            self.cluster.kubelet.start(created["metadata"]["namespace"], created["metadata"]["name"])
        return reply(created, 201)

    async def update(self, request: web.Request, target: Target) -> web.Response:
        res, namespace, name = target.resource, target.namespace or "", target.name or ""
        body = await self._body(request)
        current = self.store.get(res.plural, namespace, name)
        ctype = request.content_type
        if request.method == "PATCH" and ctype == "application/apply-patch+yaml" and current is None:
            return await self.create(request, Target(res, target.namespace, None, None, "create"), body)
        if current is None:
            raise not_found(res.plural, name, res.group)
        if request.method == "PUT":
            updated = body
        elif ctype == "application/json-patch+json":
            updated = json_patch(current, body)
        else:
            updated = merge(current, body, strategic=ctype != "application/merge-patch+json")
        if not isinstance(updated, dict):
            raise ApiError(400, "BadRequest", "the patched object is not an object")
        if target.sub == "status":
            spec_side = {k: v for k, v in current.items() if k != "status"}
            updated = {**spec_side, "status": updated.get("status", {})}
        elif res.plural in ("jobs", "pods") and request.method == "PUT":
            updated["status"] = current.get("status", {})
        updated["kind"], updated["apiVersion"] = res.kind, res.api_version
        if request.method == "PATCH":
            updated.setdefault("metadata", {}).pop("resourceVersion", None)
        if res.plural == "secrets":
            prepare_secret(updated)
        return reply(self.store.replace(res.plural, namespace, name, updated, res.group))

    async def _delete_options(self, request: web.Request) -> tuple[str | None, int | None]:
        body = await self._body(request) if request.can_read_body else None
        body = body if isinstance(body, dict) else {}
        policy = request.query.get("propagationPolicy") or body.get("propagationPolicy")
        if policy is None and body.get("orphanDependents") is not None:
            policy = "Orphan" if body["orphanDependents"] else "Background"
        grace = request.query.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
        return policy, int(grace) if grace is not None else None

    async def delete(self, request: web.Request, target: Target) -> web.Response:
        res, namespace, name = target.resource, target.namespace or "", target.name or ""
        current = self.store.require(res.plural, namespace, name, res.group)
        policy, grace = await self._delete_options(request)
        if request.query.get("dryRun"):
            return reply(current)
        if res.plural == "jobs":
            # The batch/v1 Job REST default is orphan (kubectl sends Background itself).
            result = await self.cluster.jobs.delete_job(namespace, name, policy or "Orphan")
            return reply(result or current)
        if res.plural == "pods":
            return reply(await self.delete_pod(current, grace))
        return reply(self.store.remove(res.plural, namespace, name) or current)

    async def delete_pod(self, pod: Obj, grace: int | None) -> Obj:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
        from .nodeloss import unreachable

        lost = grace > 0 and unreachable(self.store, pod)  # no kubelet there confirms the deletion
        if not lost and (grace == 0 or pod["status"].get("phase") in ("Succeeded", "Failed", "Pending")):
            await self.cluster.kubelet.delete_pod(namespace, name, 0)
            return pod

        def mark(p: Obj) -> None:
            p["metadata"]["deletionTimestamp"] = now()
            p["metadata"]["deletionGracePeriodSeconds"] = grace

        marked = self.store.mutate("pods", namespace, name, mark) or pod
        if lost:  # it stays Terminating; the job controller counts it failed
            self.cluster.kubelet._finished(marked)
            return marked
        asyncio.get_running_loop().create_task(self.cluster.kubelet.delete_pod(namespace, name, grace))
        return marked

    async def evict_api(self, target: Target) -> web.Response:
        pod = self.store.require("pods", target.namespace or "", target.name or "")
        if pod["status"].get("phase") not in ("Succeeded", "Failed"):  # as the API server does since 1.26
            meta = pod["metadata"]

            def marked(p: Obj) -> None:
                condition(p["status"], "DisruptionTarget", True, "EvictionByEvictionAPI", "Eviction API: evicting")

            pod = self.store.mutate("pods", meta["namespace"], meta["name"], marked) or pod
        await self.delete_pod(pod, None)
        return reply({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)
