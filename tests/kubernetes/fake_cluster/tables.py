"""Server-side printing (meta.k8s.io/v1 Table) for `kubectl get` without -o: the columns kubectl
users expect for pods, jobs and events; name and age for the rest."""

from __future__ import annotations

import datetime as dt
from typing import Any

Obj = dict[str, Any]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    then = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    seconds = max(int((dt.datetime.now(dt.UTC) - then).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def pod_status(pod: Obj) -> str:
    """The STATUS column, following kubectl's printer."""
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason") or status.get("phase") or "Pending"
    inits = status.get("initContainerStatuses") or []
    for i, cs in enumerate(inits):
        state = cs.get("state") or {}
        if "terminated" in state and state["terminated"].get("exitCode") == 0:
            continue
        if "terminated" in state:
            return f"Init:{state['terminated'].get('reason') or 'Error'}"
        waiting = (state.get("waiting") or {}).get("reason")
        if waiting and waiting != "PodInitializing":
            return f"Init:{waiting}"
        return f"Init:{i}/{len(inits)}"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            reason = state["terminated"].get("reason") or f"ExitCode:{state['terminated'].get('exitCode')}"
    return str(status.get("reason") or reason)


def _row(obj: Obj, cells: list[Any]) -> Obj:
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return {
        "cells": cells,
        "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
    }


def _column(name: str, type_: str = "string", fmt: str = "") -> Obj:
    return {"name": name, "type": type_, "format": fmt, "description": name, "priority": 0}


def table(plural: str, items: list[Obj], resource_version: str) -> Obj:
    if plural == "pods":
        columns = [_column("Name", fmt="name"), _column("Ready"), _column("Status"), _column("Restarts", "string")]
        columns.append(_column("Age"))
        rows = []
        for pod in items:
            statuses = pod.get("status", {}).get("containerStatuses") or []
            ready = f"{sum(1 for s in statuses if s.get('ready'))}/{len(pod['spec'].get('containers') or [])}"
            restarts = str(sum(s.get("restartCount", 0) for s in statuses))
            rows.append(
                _row(
                    pod,
                    [
                        pod["metadata"]["name"],
                        ready,
                        pod_status(pod),
                        restarts,
                        _age(pod["metadata"].get("creationTimestamp")),
                    ],
                )
            )
    elif plural == "jobs":
        columns = [_column("Name", fmt="name"), _column("Status"), _column("Completions"), _column("Age")]
        rows = []
        for job in items:
            conditions = {c["type"] for c in job.get("status", {}).get("conditions") or [] if c.get("status") == "True"}
            state = "Complete" if "Complete" in conditions else ("Failed" if "Failed" in conditions else "Running")
            done = f"{job.get('status', {}).get('succeeded', 0)}/{job['spec'].get('completions', 1)}"
            rows.append(
                _row(job, [job["metadata"]["name"], state, done, _age(job["metadata"].get("creationTimestamp"))])
            )
    elif plural == "events":
        columns = [_column("Last Seen"), _column("Type"), _column("Reason"), _column("Object"), _column("Message")]
        rows = []
        for event in items:
            inv = event.get("involvedObject") or {}
            target = f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}"
            cells = [
                _age(event.get("lastTimestamp")),
                event.get("type"),
                event.get("reason"),
                target,
                event.get("message"),
            ]
            rows.append(_row(event, cells))
    else:
        columns = [_column("Name", fmt="name"), _column("Age")]
        rows = [_row(o, [o["metadata"]["name"], _age(o["metadata"].get("creationTimestamp"))]) for o in items]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }
