"""The fake cluster's object store: objects by (resource, namespace, name), one resourceVersion
counter, a bounded event history for watches that resume from a resourceVersion, and listeners.

Everything here runs on the fake's event loop thread; nothing is thread-safe by itself.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .selectors import FieldSelector, LabelSelector

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (resource plural, namespace or "", name)
HISTORY = 20000


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """Becomes a Status object answer (see resources.status)."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    what = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "kind": resource, "group": group})


@dataclass(eq=False)  # identity hash: open watches are kept in a set
class Watcher:
    resource: str
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    queue: asyncio.Queue[tuple[str, Obj] | None] = field(default_factory=asyncio.Queue)

    def wants(self, resource: str, obj: Obj) -> bool:
        meta = obj.get("metadata", {})
        if resource != self.resource or (self.namespace and meta.get("namespace") != self.namespace):
            return False
        return self.labels.matches(meta.get("labels") or {}) and self.fields.matches(obj)


Listener = Callable[[str, str, Obj], None]  # (event type, resource, object)


class Store:
    def __init__(self) -> None:
        self._objects: dict[Key, Obj] = {}
        self._rv = itertools.count(1000)
        self.resource_version = 999
        self.history: deque[tuple[int, str, str, Obj]] = deque(maxlen=HISTORY)
        self.watchers: list[Watcher] = []
        self.listeners: list[Listener] = []
        self.changed = asyncio.Event()  # set on every write; waiters clear/re-wait

    # -- reads ---------------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get((resource, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def require(self, resource: str, namespace: str, name: str, group: str = "") -> Obj:
        obj = self.get(resource, namespace, name)
        if obj is None:
            raise not_found(resource, name, group)
        return obj

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
    ) -> list[Obj]:
        found = []
        for (res, ns, _), obj in sorted(self._objects.items()):
            if res != resource or (namespace and ns != namespace):
                continue
            if labels and not labels.matches(obj["metadata"].get("labels") or {}):
                continue
            if fields and not fields.matches(obj):
                continue
            found.append(copy.deepcopy(obj))
        return found

    # -- writes --------------------------------------------------------------------------
    def _bump(self, obj: Obj) -> int:
        rv = next(self._rv)
        self.resource_version = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        return rv

    def _emit(self, kind: str, resource: str, obj: Obj, rv: int) -> None:
        snapshot = copy.deepcopy(obj)
        self.history.append((rv, kind, resource, snapshot))
        for watcher in list(self.watchers):
            if watcher.wants(resource, snapshot):
                watcher.queue.put_nowait((kind, copy.deepcopy(snapshot)))
        for listener in list(self.listeners):
            listener(kind, resource, copy.deepcopy(snapshot))
        self.changed.set()
        self.changed = asyncio.Event()

    def create(self, resource: str, namespace: str, obj: Obj, group: str = "") -> Obj:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
            )
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        key = (resource, namespace, name)
        if key in self._objects:
            what = f"{resource}.{group}" if group else resource
            raise ApiError(409, "AlreadyExists", f'{what} "{name}" already exists', {"name": name, "kind": resource})
        if namespace:
            meta["namespace"] = namespace
        meta["uid"] = meta.get("uid") or str(uuid.uuid4())  # jobs come with theirs (labels)
        meta["creationTimestamp"] = now()
        meta.setdefault("generation", 1)
        for drop in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(drop, None)
        rv = self._bump(obj)
        self._objects[key] = obj
        self._emit("ADDED", resource, obj, rv)
        return copy.deepcopy(obj)

    def replace(self, resource: str, namespace: str, name: str, obj: Obj, group: str = "") -> Obj:
        current = self._objects.get((resource, namespace, name))
        if current is None:
            raise not_found(resource, name, group)
        wanted = obj.get("metadata", {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                {"name": name, "kind": resource},
            )
        meta = obj.setdefault("metadata", {})
        for keep in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp"):
            if keep in current["metadata"]:
                meta[keep] = current["metadata"][keep]
        if obj.get("spec") != current.get("spec"):
            meta["generation"] = current["metadata"].get("generation", 1) + 1
        else:
            meta["generation"] = current["metadata"].get("generation", 1)
        rv = self._bump(obj)
        self._objects[(resource, namespace, name)] = obj
        self._emit("MODIFIED", resource, obj, rv)
        return copy.deepcopy(obj)

    def mutate(self, resource: str, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj | None:
        """Internal status/metadata change (controllers, kubelet); None when the object is gone."""
        current = self._objects.get((resource, namespace, name))
        if current is None:
            return None
        updated = copy.deepcopy(current)
        change(updated)
        if updated == current:
            return copy.deepcopy(current)
        rv = self._bump(updated)
        self._objects[(resource, namespace, name)] = updated
        self._emit("MODIFIED", resource, updated, rv)
        return copy.deepcopy(updated)

    def remove(self, resource: str, namespace: str, name: str) -> Obj | None:
        obj = self._objects.pop((resource, namespace, name), None)
        if obj is None:
            return None
        rv = self._bump(obj)
        self._emit("DELETED", resource, obj, rv)
        return copy.deepcopy(obj)

    # -- watches -------------------------------------------------------------------------
    def since(self, resource_version: int) -> list[tuple[str, str, Obj]] | None:
        """Events after ``resource_version``; None when the history no longer reaches back."""
        if resource_version >= self.resource_version:
            return []
        if not self.history or self.history[0][0] > resource_version + 1:
            return None
        return [(kind, res, copy.deepcopy(obj)) for rv, kind, res, obj in self.history if rv > resource_version]

    def compact(self) -> None:
        """Forget the history (a watch from an old resourceVersion then gets 410 Gone)."""
        self.history.clear()
        self.resource_version = next(self._rv)
