"""A build pod that never starts and says nothing rtbuild acts on: ContainerCreating with
FailedMount or FailedCreatePodSandBox Events (a broken CNI, a volume that cannot be mounted),
or an image pull that crawls. The kubelet retries until the Job's deadline, an hour by
default, and rtbuild waited that long without a word after 'created Job'."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rtbuild import Reporter
from rtbuild._framework.progress import use_reporter

SANDBOX = 'Failed to create pod sandbox: plugin type="calico" failed (add): connection is unauthorized'
POD = {
    "metadata": {"name": "rtbuild-app-b1-x"},
    "status": {"phase": "Pending", "containerStatuses": [{"name": "build", "state": {"waiting": {}}}]},
}


class _Said(Reporter):
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "warning":
            self.warnings.append(str(fields.get("message")))


class _PendingPod:
    """The Job is there, its pod stays Pending; the watch only ever ticks."""

    namespace = "builds"

    def list_pods(self, selector: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
        return [POD], "7"

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "status": {}}

    def events(self, name: str) -> list[dict[str, str]]:
        assert name == "rtbuild-app-b1-x"
        return [
            {"type": "Normal", "reason": "Scheduled", "message": "Successfully assigned", "lastTimestamp": "1"},
            {"type": "Warning", "reason": "FailedCreatePodSandBox", "message": SANDBOX, "lastTimestamp": "2"},
            {"type": "Normal", "reason": "SandboxChanged", "message": "Pod sandbox changed", "lastTimestamp": "3"},
        ]

    def watch_pods(self, selector: dict[str, str], version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        from rtbuild_kubernetes.client import TICK

        while True:
            yield TICK, {}


def _waited(what: str) -> list[str]:
    import time

    from rtbuild_kubernetes.jobrun import JobRun
    from rtbuild_kubernetes.manifests import JobPlan
    from rtbuild_kubernetes.scheduling import STUCK_NOTICE_S
    from rtbuild_kubernetes.settings import settings_from_table

    plan = JobPlan(build_id="b1", namespace="builds", tags=["r/a:1"])
    run = JobRun(_PendingPod(), settings_from_table({}), plan)  # type: ignore[arg-type]
    run.stuck.since -= STUCK_NOTICE_S  # as if the pod had waited that long already
    run.deadline = time.monotonic() + 3  # then rtbuild's own deadline ends the wait
    said = _Said()
    with use_reporter(said), pytest.raises(Exception, match="deadline"):
        run._wait(lambda pod: False, what)
    return said.warnings


def test_a_pod_that_does_not_start_is_said_once_with_its_latest_warning_event() -> None:
    warnings = _waited("the build pod to start")
    assert len(warnings) == 1, warnings
    assert "the build pod rtbuild-app-b1-x has not started after 60 s" in warnings[0]
    assert f"(FailedCreatePodSandBox: {SANDBOX})" in warnings[0]
    assert "Job's deadline (3600 s)" in warnings[0] and "kubectl describe pod rtbuild-app-b1-x" in warnings[0]


def test_a_running_build_is_not_said_to_be_stuck() -> None:
    assert _waited("the build to finish") == []


def test_events_of_the_events_api_sort_by_their_own_time() -> None:
    # The scheduler writes through events.k8s.io: lastTimestamp null, eventTime (or a series'
    # lastObservedTime) set. Sorted by lastTimestamp alone they came first, whatever their time.
    from rtbuild_kubernetes.scheduling import event_time

    kubelet = {"reason": "Pulling", "lastTimestamp": "2026-12-03T10:00:00Z"}
    scheduler = {"reason": "FailedScheduling", "lastTimestamp": None, "eventTime": "2026-12-03T10:05:00.123456Z"}
    repeated = {"reason": "FailedMount", "eventTime": "2026-12-03T09:00:00.000001Z"}
    repeated["series"] = {"count": 9, "lastObservedTime": "2026-12-03T10:09:00.000001Z"}
    ordered = sorted([scheduler, repeated, kubelet], key=event_time)
    assert [e["reason"] for e in ordered] == ["Pulling", "FailedScheduling", "FailedMount"]
