"""PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (as a merge patch whose
lists of named items merge by name, the patch-merge key of containers, env, volumes...),
JSON patch (RFC 6902: add, replace, remove, test) and server-side apply (as a merge)."""

from __future__ import annotations

import copy
from typing import Any

from .store import ApiError


def merge(target: Any, patch: Any, strategic: bool = False) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # strategic directives ($patch, $retainKeys...) are not modelled
            continue
        if value is None:
            result.pop(key, None)
        elif strategic and isinstance(value, list) and _named(value) and _named(result.get(key)):
            result[key] = _merge_named(result[key], value)
        else:
            result[key] = merge(result.get(key), value, strategic)
    return result


def _named(items: Any) -> bool:
    return isinstance(items, list) and bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _merge_named(current: list[Any], patch: list[Any]) -> list[Any]:
    merged = [copy.deepcopy(item) for item in current]
    for item in patch:
        for i, existing in enumerate(merged):
            if existing["name"] == item["name"]:
                merged[i] = merge(existing, item, True)
                break
        else:
            merged.append(copy.deepcopy(item))
    return merged


def _pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(target)
    for op in operations:
        parts = _pointer(op["path"])
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else ""
        kind = op["op"]
        try:
            if kind in ("add", "replace"):
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(op["value"])
                    elif kind == "add":
                        parent.insert(int(last), op["value"])
                    else:
                        parent[int(last)] = op["value"]
                else:
                    parent[last] = op["value"]
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "test":
                actual = parent[int(last)] if isinstance(parent, list) else parent.get(last)
                if actual != op["value"]:
                    raise ApiError(
                        422,
                        "Invalid",
                        f"the server rejected our request due to an error in our request: test failed at {op['path']}",
                    )
            else:
                raise ApiError(415, "UnsupportedMediaType", f"json patch op {kind!r} is not supported by the fake")
        except (KeyError, IndexError, ValueError) as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request: {kind} {op['path']}: {exc}") from exc
    return doc
