"""The routes: discovery documents (/version, /api, /apis, OpenAPI v3 index, health) and the
catch-all resource paths handled by api.Handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from . import openapi
from .api import Handlers, reply
from .resources import VERSION, api_group, api_groups, api_versions, resource_list
from .store import ApiError

if TYPE_CHECKING:
    from .cluster import FakeCluster


def routes(cluster: FakeCluster) -> list[web.RouteDef]:
    async def version(request: web.Request) -> web.Response:
        return reply(VERSION)

    async def api_root(request: web.Request) -> web.Response:
        return reply(api_versions(f"127.0.0.1:{cluster.port}"))

    async def apis_root(request: web.Request) -> web.Response:
        return reply(api_groups())

    async def group_doc(request: web.Request) -> web.Response:
        doc = api_group(request.match_info["group"])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return reply(doc)

    async def core_resources(request: web.Request) -> web.Response:
        doc = resource_list("", request.match_info["version"])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return reply(doc)

    async def group_resources(request: web.Request) -> web.Response:
        doc = resource_list(request.match_info["group"], request.match_info["version"])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return reply(doc)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def openapi_root(request: web.Request) -> web.Response:
        return reply(openapi.root())

    async def openapi_doc(request: web.Request) -> web.Response:
        doc = openapi.group_version(request.match_info["key"])
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return reply(doc)

    async def resources(request: web.Request) -> web.StreamResponse:
        return await Handlers(cluster).dispatch(request)

    return [
        web.get("/version", version),
        web.get("/healthz", health),
        web.get("/livez", health),
        web.get("/readyz", health),
        web.get("/openapi/v3", openapi_root),
        web.get("/openapi/v3/{key:.+}", openapi_doc),
        web.get("/api", api_root),
        web.get("/api/", api_root),
        web.get("/apis", apis_root),
        web.get("/apis/", apis_root),
        web.get("/api/{version}", core_resources),
        web.get("/apis/{group}", group_doc),
        web.get("/apis/{group}/{version}", group_resources),
        web.route("*", "/api/{version}/{tail:.+}", resources),
        web.route("*", "/apis/{group}/{version}/{tail:.+}", resources),
    ]
