"""core/v1 Events as the scheduler, kubelet and job controller record them (same reason and
message repeated on one object -> count + lastTimestamp, like the real event recorder)."""

from __future__ import annotations

import secrets
from typing import Any

from .store import Store, now

Obj = dict[str, Any]


def record_event(
    store: Store, involved: Obj, reason: str, message: str, type_: str = "Normal", component: str = "kubelet"
) -> None:
    meta = involved["metadata"]
    namespace = meta.get("namespace", "default")
    for event in store.list("events", namespace):
        inv = event.get("involvedObject", {})
        if inv.get("uid") == meta.get("uid") and event.get("reason") == reason and event.get("message") == message:

            def bump(ev: Obj) -> None:
                ev["count"] = ev.get("count", 1) + 1
                ev["lastTimestamp"] = now()

            store.mutate("events", namespace, event["metadata"]["name"], bump)
            return
    stamp = now()
    store.create(
        "events",
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {
                "kind": involved.get("kind", ""),
                "apiVersion": involved.get("apiVersion", ""),
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": "rtbuild-fake-node" if component == "kubelet" else "",
            "source": {"component": component, **({"host": "rtbuild-fake-node"} if component == "kubelet" else {})},
        },
    )
