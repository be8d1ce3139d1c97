"""An operator (or a namespace clean-up, or a controller) deletes the build's Job before it
ever had a pod: a quota held the pod back, nobody waited for it. rtbuild went on listing pods
of a Job that no longer existed, silent, until the Job's whole deadline (an hour by default)
plus 60 s, and then blamed the build's time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import RTBUILD, clean_env, write_config

pytestmark = [pytest.mark.engine]


def test_a_job_deleted_before_it_had_a_pod_ends_the_build_with_that_reason(
    cluster: Any, kubectl: str, kube_env: dict[str, str], tmp_path: Path
) -> None:
    cluster.faults.refuse_pods("exceeded quota: compute, requested: memory=1Gi, used: memory=8Gi, limited: memory=8Gi")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    # A deadline far beyond the test's bound: only noticing the deletion ends the build in time.
    config = write_config(
        tmp_path / "rtbuild.toml", Path(cluster.kubeconfig_path), skip_unchanged=False, active_deadline_seconds=900
    )
    args = ["build", str(context), "--builder", "kubernetes", "-t", "127.0.0.1:9/team/gone:1", "--json"]
    proc = subprocess.Popen(
        [RTBUILD, *args], cwd=tmp_path, env=clean_env(RTBUILD_CONFIG=str(config), HOME=str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The quota warning says rtbuild is waiting for the pod: the Job is there, without one.
        cluster.wait_for(
            lambda: any(e.get("reason") == "FailedCreate" for e in cluster.list("events")) or proc.poll() is not None,
            timeout=120,
        )
        assert proc.poll() is None, proc.communicate()
        job = cluster.list("jobs")[0]["metadata"]
        deleted = subprocess.run(
            [kubectl, "delete", "job", job["name"], "-n", job["namespace"], "--wait=false"],
            env=kube_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stderr[-4000:]
    error = json.loads(stdout)
    assert error["error"] == "JobDeletedError", error
    assert f"the build Job {job['name']} was deleted" in error["message"], error
    assert "not by rtbuild" in error["message"] and error["blame"] == "cluster", error
    assert "deadline" not in error["message"], error
    assert "deleted Job" not in stderr and "could not delete" not in stderr, stderr[-4000:]
    assert cluster.list("jobs") == [] and cluster.list("secrets") == []


def test_a_pod_deleted_with_its_job_names_the_job() -> None:
    """The pod's DELETED event: when its Job is gone too (`kubectl delete job` while the build
    ran), the error says the Job was deleted, not that 'something deleted the pod'."""
    from collections.abc import Iterator

    from rtbuild_kubernetes.failures import JobDeletedError
    from rtbuild_kubernetes.jobrun import JobRun
    from rtbuild_kubernetes.manifests import JobPlan
    from rtbuild_kubernetes.settings import settings_from_table

    class JobAndPodGone:
        """The Job is there at the first list; gone once the pod's deletion arrives."""

        namespace = "builds"
        job_gone = False
        closed = False

        def list_pods(self, selector: dict[str, str]) -> tuple[list[dict[str, object]], str]:
            return [{"metadata": {"name": "rtbuild-app-b1-x"}, "status": {"phase": "Running"}}], "7"

        def get(self, kind: str, name: str) -> dict[str, object] | None:
            return None if self.job_gone else {"metadata": {"name": name}, "status": {}}

        def watch_pods(self, selector: dict[str, str], version: str) -> Iterator[tuple[str, dict[str, object]]]:
            try:
                self.job_gone = True
                yield "DELETED", {"metadata": {"name": "rtbuild-app-b1-x"}, "status": {}}
            finally:
                self.closed = True

    client = JobAndPodGone()
    run = JobRun(client, settings_from_table({}), JobPlan(build_id="b1", namespace="builds", tags=["r/a:1"]))  # type: ignore[arg-type]
    with pytest.raises(JobDeletedError, match=r"the build Job \S+ was deleted while waiting for the build") as raised:
        run._wait(lambda pod: False, "the build to finish")
    assert raised.value.blame == "cluster" and client.closed


def test_the_log_of_a_deleted_pod_is_no_warning() -> None:
    """The pod went with its Job: the log stream's 404 printed 'the build's live log is not
    available (... HTTP 404: pods ... not found ...): the build goes on' just before the error
    that says the build ended, and no such warning is due (the pod watch reports the deletion)."""
    from collections.abc import Iterator

    from rtbuild_kubernetes.client import LightkubeClient
    from rtbuild_kubernetes.logfollow import follow_build_log

    client = object.__new__(LightkubeClient)
    client.namespace, client.server = "builds", "https://127.0.0.1:6443"
    gone = client._api_error("get", "pods/log", 404, 'pods "rtbuild-app-b1-x" not found', "pods")

    class PodGone:
        def follow_log(self, pod: str, container: str, **options: object) -> Iterator[str]:
            if options.get("since_seconds") is None:
                yield "2026-12-03T07:00:00.5Z tick-1\n"
            raise gone  # the stream, and the last read, meet the pod's deletion

    lines: list[str] = []
    warnings: list[str] = []
    follow_build_log(PodGone(), "rtbuild-app-b1-x", "build", lines.append, lambda: False, warnings.append, bool)  # type: ignore[arg-type]
    assert lines == ["tick-1"]
    assert warnings == []
