"""The garbage collector's ownerReferences rules, as a real cluster applies them: an object
whose owners are all gone is deleted, whether they went after it was created (an API delete
with propagation Background or Foreground, a Job's TTL) or before (a dependent created with an
owner uid that does not exist, or no longer does, is collected at once). An owner is the object
of that kind, name and uid; one owner left keeps the dependent (without the dangling
reference). Orphan deletion strips the reference instead (:func:`orphan_dependents`).

Pods are left to the job controller, which deletes a Job's pods through the kubelet (their
containers must stop); the collector handles every other kind."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .resources import RESOURCES
from .store import Store

if TYPE_CHECKING:
    from .controllers import JobController

Obj = dict[str, Any]
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def _refs(obj: Obj) -> list[Obj]:
    return list(obj["metadata"].get("ownerReferences") or [])


def orphan_dependents(store: Store, owner: Obj, skip: tuple[str, ...] = ("pods",)) -> None:
    """Strip ``owner`` from the ownerReferences of its dependents (deletion with propagation
    Orphan); the pods are the job controller's."""
    uid, namespace = owner["metadata"]["uid"], owner["metadata"].get("namespace", "")
    for resource in (r.plural for r in RESOURCES if r.namespaced and r.plural not in skip):
        for obj in store.list(resource, namespace):
            if any(ref.get("uid") == uid for ref in _refs(obj)):

                def strip(o: Obj) -> None:
                    kept = [ref for ref in _refs(o) if ref.get("uid") != uid]
                    if kept:
                        o["metadata"]["ownerReferences"] = kept
                    else:
                        o["metadata"].pop("ownerReferences", None)

                store.mutate(resource, namespace, obj["metadata"]["name"], strip)


class GarbageCollector:
    def __init__(self, store: Store, jobs: JobController) -> None:
        self.store, self.jobs = store, jobs
        store.listeners.append(self._changed)

    def _changed(self, kind: str, resource: str, obj: Obj) -> None:
        # Asynchronous, as the real collector: it acts after the change, never inside it.
        loop = asyncio.get_running_loop()
        meta = obj["metadata"]
        if kind == "DELETED":
            loop.call_soon(self._collect_dependents, meta.get("namespace", ""), meta.get("uid"))
        elif resource != "pods" and _refs(obj):
            loop.call_soon(self._collect_if_ownerless, resource, meta.get("namespace", ""), meta["name"])

    def _owner_exists(self, namespace: str, ref: Obj) -> bool:
        res = _BY_KIND.get((ref.get("apiVersion", ""), ref.get("kind", "")))
        if res is None:
            return True  # a kind this fake does not serve: never collected for it
        owner = self.store.get(res.plural, namespace if res.namespaced else "", ref.get("name", ""))
        return owner is not None and owner["metadata"]["uid"] == ref.get("uid")

    def _collect_if_ownerless(self, resource: str, namespace: str, name: str) -> None:
        obj = self.store.get(resource, namespace, name)
        if obj is None or not _refs(obj):
            return
        alive = [ref for ref in _refs(obj) if self._owner_exists(namespace, ref)]
        if not alive:
            self._delete(resource, namespace, name)
        elif len(alive) < len(_refs(obj)):  # the real collector strips the dangling references

            def strip(o: Obj) -> None:
                o["metadata"]["ownerReferences"] = [ref for ref in _refs(o) if ref in alive]

            self.store.mutate(resource, namespace, name, strip)

    def _collect_dependents(self, namespace: str, uid: str | None) -> None:
        if not uid:
            return
        for resource in (r.plural for r in RESOURCES if r.plural != "pods"):
            for obj in self.store.list(resource, namespace or None):
                if any(ref.get("uid") == uid for ref in _refs(obj)):
                    self._collect_if_ownerless(resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    def _delete(self, resource: str, namespace: str, name: str) -> None:
        if resource == "jobs":
            asyncio.get_running_loop().create_task(self.jobs.delete_job(namespace, name, "Background"))
        else:
            self.store.remove(resource, namespace, name)
