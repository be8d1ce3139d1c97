"""Pod status pieces as a kubelet writes them: conditions with transition times, container
statuses (waiting/running/terminated) and timestamps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .store import Store, now

Obj = dict[str, Any]


def stamp(docker_time: str | None) -> str | None:
    """Docker's RFC 3339 nano time to the API's second precision (None for "never")."""
    if not docker_time or docker_time.startswith("0001"):
        return None
    return docker_time.split(".")[0].rstrip("Z") + "Z"


def condition(status: Obj, type_: str, value: bool, reason: str | None = None, message: str | None = None) -> None:
    """Set a pod condition; lastTransitionTime moves only when status or reason change."""
    conditions = status.setdefault("conditions", [])
    current = next((c for c in conditions if c["type"] == type_), None)
    entry: Obj = {"type": type_, "status": "True" if value else "False", "lastProbeTime": None}
    if reason:
        entry["reason"] = reason
    if message:
        entry["message"] = message
    if current is None:
        conditions.append({**entry, "lastTransitionTime": now()})
    elif current["status"] != entry["status"] or current.get("reason") != reason:
        current.clear()
        current.update({**entry, "lastTransitionTime": now()})


def waiting(container: Obj, reason: str, message: str | None = None) -> Obj:
    state: Obj = {"reason": reason} if reason else {}
    if message:
        state["message"] = message
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": state},
    }


def set_container_status(
    store: Store, pod: Obj, group: str, status: Obj, then: Callable[[Obj], None] | None = None
) -> None:
    """Replace the status of one container in ``group`` (containerStatuses/initContainerStatuses);
    ``then`` changes the pod further in the same write (watchers see one consistent update)."""

    def change(p: Obj) -> None:
        statuses = p["status"].setdefault(group, [])
        for i, current in enumerate(statuses):
            if current["name"] == status["name"]:
                statuses[i] = status
                break
        else:
            statuses.append(status)
        if then is not None:
            then(p)

    store.mutate("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], change)
