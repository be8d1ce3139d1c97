"""A build pod no node fits yet. On a cluster that adds nodes on demand (the cluster autoscaler,
Karpenter, GKE Autopilot: a build node pool scaled to zero is the usual set-up) every first pod
is ``Unschedulable`` until its node is up; the autoscaler says so with an Event on the pod
(``TriggeredScaleUp``, Karpenter's ``Nominated``). rtbuild failed such a build at once.

Now the scheduler's verdict stands only when nothing is adding a node: an autoscaler that says
it cannot help (``NotTriggerScaleUp``), or no word from one within :data:`GRACE_S` (the cluster
autoscaler looks every 10 s). While a node is coming the wait goes on, said once, up to the
Job's deadline."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rtbuild import get_reporter

from .failures import unschedulable_error

if TYPE_CHECKING:
    from .client import KubeClient

#: How long an Unschedulable pod waits for word from an autoscaler before the verdict stands.
GRACE_S = 20.0
#: Pod Events that say a node is being added for it.
SCALING = ("TriggeredScaleUp", "Nominated")
#: A pod Event that says no node will be added for it.
NOT_SCALING = "NotTriggerScaleUp"


class Unscheduled:
    """One Job's view of its pod's scheduling: :meth:`check` on each sight of the pod."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.since: float | None = None  # when the pod was first seen Unschedulable
        self.told = False

    @property
    def pending(self) -> bool:
        """Whether the pod was Unschedulable when last seen (its state is then re-read every few seconds)."""
        return self.since is not None

    def check(self, pod: str, message: str | None, selector: dict[str, str], prefix: str = "") -> None:
        """``message``: the pod's Unschedulable condition's message, None once it is scheduled."""
        if message is None:
            self.since = None
            return
        now = time.monotonic()
        self.since = self.since if self.since is not None else now
        try:
            events = sorted(self.client.events(pod), key=event_time)
        except Exception:  # events are advice: without them the grace period decides
            events = []
        reasons = [(str(e.get("reason") or ""), str(e.get("message") or "")) for e in events]
        scaling = [text for reason, text in reasons if reason in SCALING]
        refused = [text for reason, text in reasons if reason == NOT_SCALING]
        if refused and not scaling:
            raise unschedulable_error(f"{message}; the cluster autoscaler: {refused[-1]}", pod, selector)
        if scaling:
            if not self.told:
                self.told = True
                get_reporter().event(
                    "k8s_node_coming",
                    pod=pod,
                    message=f"{prefix}no node fits the build pod yet; a node is being added ({scaling[-1]})",
                )
            return
        if now - self.since >= GRACE_S:
            raise unschedulable_error(message, pod, selector)


def event_time(event: dict[str, Any]) -> str:
    """When an Event last happened, to the second, for sorting: ``lastTimestamp``, or for those
    the events.k8s.io API writes (the scheduler's, since 1.19) ``series.lastObservedTime`` or
    ``eventTime``, their ``lastTimestamp`` being null."""
    series = event.get("series") or {}
    when = event.get("lastTimestamp") or series.get("lastObservedTime") or event.get("eventTime")
    return str(when or event.get("firstTimestamp") or "")[:19]


#: A build pod that has not started after this long is said to wait, once, with its latest Event.
STUCK_NOTICE_S = 60.0


class Stuck:
    """A build pod that does not start and says nothing rtbuild acts on (``ContainerCreating``
    with ``FailedMount`` or ``FailedCreatePodSandBox`` Events, a slow image pull): the kubelet
    retries until the Job's deadline, an hour by default, and rtbuild waited that long in
    silence. After :data:`STUCK_NOTICE_S` it says once what the pod's Events say."""

    def __init__(self, client: KubeClient, deadline_s: int) -> None:
        self.client = client
        self.deadline_s = deadline_s
        self.since = time.monotonic()
        self.told = False

    def check(self, pods: list[dict[str, Any]], starting: bool, prefix: str = "") -> None:
        if self.told or not starting or not pods or time.monotonic() - self.since < STUCK_NOTICE_S:
            return
        self.told = True
        name = str((pods[0].get("metadata") or {}).get("name") or "")
        try:
            events = sorted(self.client.events(name), key=event_time)
        except Exception:  # events are advice
            events = []
        warnings = [e for e in events if e.get("type") == "Warning"] or events
        said = f"{warnings[-1].get('reason')}: {warnings[-1].get('message')}" if warnings else "it has no Events"
        get_reporter().event(
            "warning",
            pod=name,
            message=f"{prefix}the build pod {name} has not started after {int(STUCK_NOTICE_S)} s ({said});"
            f" rtbuild waits up to the Job's deadline ({self.deadline_s} s): `kubectl describe pod {name}`",
        )


__all__ = ["GRACE_S", "STUCK_NOTICE_S", "Stuck", "Unscheduled", "event_time"]
