"""A build node pool scaled to zero behind a cluster autoscaler (or Karpenter): every first build
pod is Unschedulable until its node is up, and the autoscaler says so with a TriggeredScaleUp
Event on the pod. rtbuild failed such a build at once with UnschedulableError, so on these
clusters every build after a quiet spell failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import Site, rtbuild, step_image_tag, write_config


@pytest.mark.engine
@pytest.mark.registry
def test_a_build_waits_for_the_node_an_autoscaler_adds(site: Site, cluster: Any) -> None:
    cluster.faults.scale_up(3)
    # No node has this label: only the (fake) autoscaler's new node takes the pod.
    config = write_config(site.root / "rtbuild.toml", Path(cluster.kubeconfig_path), step_image=step_image_tag())
    with config.open("a") as handle:
        handle.write('node_selector = { "rtbuild.dev/pool" = "builds" }\n')
    context = site.context("scaleup", "FROM BASE\nRUN echo built-on-a-new-node\n")
    args = ("build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/scaleup:1")
    proc = rtbuild(*args, cwd=site.root, env=site.env(RTBUILD_CONFIG=str(config)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("no node fits the build pod yet; a node is being added") == 1, proc.stderr[-4000:]
    assert "pod triggered scale-up" in proc.stderr and "built-on-a-new-node" in proc.stderr
    assert proc.stdout.strip() == f"{site.registry}/team/scaleup:1"


class _Events:
    namespace = "builds"

    def __init__(self, *events: tuple[str, str]) -> None:
        self.listed = [{"reason": reason, "message": message} for reason, message in events]

    def events(self, name: str) -> list[dict[str, str]]:
        return self.listed


SCHEDULER = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def test_the_schedulers_verdict_stands_when_no_autoscaler_speaks_within_the_grace() -> None:
    from rtbuild_kubernetes.failures import UnschedulableError
    from rtbuild_kubernetes.scheduling import GRACE_S, Unscheduled

    unscheduled = Unscheduled(_Events(("FailedScheduling", SCHEDULER)))  # type: ignore[arg-type]
    unscheduled.check("pod-1", SCHEDULER, {"rtbuild.dev/pool": "builds"})  # an autoscaler may still speak
    assert unscheduled.pending
    assert unscheduled.since is not None
    unscheduled.since -= GRACE_S  # as if the grace had passed
    with pytest.raises(UnschedulableError, match="no node can run the build pod pod-1: 0/3 nodes") as raised:
        unscheduled.check("pod-1", SCHEDULER, {"rtbuild.dev/pool": "builds"})
    assert "rtbuild.dev/pool" in (raised.value.hint or "")


def test_an_autoscaler_that_cannot_help_ends_the_wait_at_once_with_its_reason() -> None:
    from rtbuild_kubernetes.failures import UnschedulableError
    from rtbuild_kubernetes.scheduling import Unscheduled

    said = "pod didn't trigger scale-up: 1 node(s) didn't match Pod's node affinity/selector, 1 max size reached"
    unscheduled = Unscheduled(_Events(("FailedScheduling", SCHEDULER), ("NotTriggerScaleUp", said)))  # type: ignore[arg-type]
    with pytest.raises(UnschedulableError, match="the cluster autoscaler: pod didn't trigger scale-up"):
        unscheduled.check("pod-1", SCHEDULER, {})


def test_a_node_being_added_is_waited_for_and_said_once() -> None:
    from rtbuild import Reporter
    from rtbuild._framework.progress import use_reporter
    from rtbuild_kubernetes.scheduling import GRACE_S, Unscheduled

    class Said(Reporter):
        def __init__(self) -> None:
            self.messages: list[str] = []

        def event(self, kind: str, **fields: Any) -> None:
            self.messages.append(str(fields.get("message")))

    said = Said()
    nominated = ("Nominated", "Pod should schedule on: nodeclaim/builds-x7k2p")  # Karpenter's word
    unscheduled = Unscheduled(_Events(("FailedScheduling", SCHEDULER), nominated))  # type: ignore[arg-type]
    with use_reporter(said):
        unscheduled.check("pod-1", SCHEDULER, {})
        assert unscheduled.since is not None
        unscheduled.since -= 10 * GRACE_S  # long past the grace: a node coming is still waited for
        unscheduled.check("pod-1", SCHEDULER, {}, "[linux/arm64] ")
    assert said.messages == [
        "no node fits the build pod yet; a node is being added (Pod should schedule on: nodeclaim/builds-x7k2p)"
    ]
    unscheduled.check("pod-1", None, {})  # scheduled at last
    assert not unscheduled.pending
