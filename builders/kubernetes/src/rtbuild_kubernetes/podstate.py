"""What a build pod's status says about its containers: whether the context init container
runs, whether the build container has started or ended, and the failure a container's state
shows (a step image that cannot be pulled, an init container that failed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .failures import terminated_error, waiting_error
from .manifests import BUILD_CONTAINER, INIT_CONTAINER

if TYPE_CHECKING:
    from rtbuild import AgentRuntimeBuildError

    from .settings import Settings


def statuses(pod: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """The pod's ``key`` (``containerStatuses``, ``initContainerStatuses``) by container name."""
    return {s.get("name", ""): s for s in (pod.get("status") or {}).get(key) or []}


def node_selector(pod: dict[str, Any]) -> dict[str, str]:
    return dict((pod.get("spec") or {}).get("nodeSelector") or {})


def init_running(pod: dict[str, Any]) -> bool:
    init = statuses(pod, "initContainerStatuses").get(INIT_CONTAINER) or {}
    return "running" in (init.get("state") or {})


def build_started(pod: dict[str, Any]) -> bool:
    build = statuses(pod, "containerStatuses").get(BUILD_CONTAINER) or {}
    state = build.get("state") or {}
    return "running" in state or "terminated" in state


def build_done(pod: dict[str, Any]) -> bool:
    build = statuses(pod, "containerStatuses").get(BUILD_CONTAINER) or {}
    return "terminated" in (build.get("state") or {})


def container_error(pod: dict[str, Any], settings: Settings, lines: list[str]) -> AgentRuntimeBuildError | None:
    """The error a container's state shows: one waiting for a reason that will not pass (an
    image pull), or the init container ended with a non-zero exit code. The build container's
    own exit is read once it has ended (the result, or its failure)."""
    name = (pod.get("metadata") or {}).get("name", "?")
    for key in ("initContainerStatuses", "containerStatuses"):
        for cname, cstatus in statuses(pod, key).items():
            state = cstatus.get("state") or {}
            waiting = state.get("waiting")
            if waiting:
                error = waiting_error(waiting, name, cstatus.get("image") or settings.image)
                if error:
                    return error
            term = state.get("terminated")
            if term and int(term.get("exitCode") or 0) != 0 and (cname != BUILD_CONTAINER):
                return terminated_error(term, lines, container=cname, pod=name, limits=settings.limits)
    return None


__all__ = ["build_done", "build_started", "container_error", "init_running", "node_selector", "statuses"]
