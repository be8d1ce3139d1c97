"""Just enough OpenAPI v3 for kubectl: per group-version, a PATCH operation per kind carrying the
`fieldValidation` query parameter, which is how kubectl decides that the server validates
fields itself (`kubectl apply --validate=strict`, the default). No schemas are served: the fake
does not check unknown fields (the builder's manifests are checked with kubernetes-validate)."""

from __future__ import annotations

from typing import Any

from .resources import RESOURCES

Obj = dict[str, Any]


def _key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def root() -> Obj:
    keys = sorted({_key(r.group, r.version) for r in RESOURCES})
    return {"paths": {key: {"serverRelativeURL": f"/openapi/v3/{key}?hash=rtbuild-fake"} for key in keys}}


def group_version(key: str) -> Obj | None:
    chosen = [r for r in RESOURCES if _key(r.group, r.version) == key]
    if not chosen:
        return None
    paths: Obj = {}
    for r in chosen:
        prefix = f"/{key}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"/{key}/{r.plural}"
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        param = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        operation = {
            "operationId": f"patch{r.kind}",
            "parameters": [param],
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "responses": {"200": {"description": "OK"}},
        }
        paths[f"{prefix}/{{name}}"] = {"patch": operation}
    return {
        "openapi": "3.0.0",
        "info": {"title": "rtbuild fake cluster", "version": "v1.32.0+rtbuild-fake-cluster"},
        "paths": paths,
        "components": {"schemas": {}},
    }
