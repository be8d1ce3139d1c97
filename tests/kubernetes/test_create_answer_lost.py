"""A create whose answer is lost (the API server did it, the connection dropped before the
answer): the retry's 409 AlreadyExists is the first attempt's success, and a run that fails
after such a create still deletes the Job it cannot be sure of."""

from __future__ import annotations

from typing import Any

import pytest
from _kbuilder_support import Site
from rtbuild_kubernetes.failures import ClusterUnreachableError
from rtbuild_kubernetes.jobrun import JobRun
from rtbuild_kubernetes.manifests import JobPlan
from rtbuild_kubernetes.settings import settings_from_table
from test_kubernetes_e2e import _build, _config, _jobs


@pytest.mark.engine
@pytest.mark.registry
@pytest.mark.slow
def test_a_job_create_whose_answer_is_lost_is_not_a_conflict(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context("lostanswer", "FROM BASE\nRUN echo built > /built.txt\n")
    cluster.faults.lose_next_answer("create", "jobs")
    proc = _build(site, context, f"{site.registry}/team/lostanswer:1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    creates = cluster.requests_for(verb="create", resource="jobs")
    assert [r.status for r in creates] == [0, 409]  # done but unanswered, then the retry's conflict
    assert len(_jobs(cluster)) == 1
    assert cluster.list("secrets", namespace=cluster.namespace) == []


class _CreatedButUnanswered:
    """A stand-in client: the Job create reaches the cluster, the answer never comes back."""

    namespace = "builds"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", kind, obj["metadata"]["name"]))
        if kind == "Job":
            raise ClusterUnreachableError("the Kubernetes API at https://k is unreachable: Server disconnected")
        return obj

    def delete(self, kind: str, name: str, *, propagation: str = "Background") -> bool:
        self.calls.append(("delete", kind, name))
        return True


def test_a_run_whose_job_create_failed_in_transit_deletes_the_job() -> None:
    client = _CreatedButUnanswered()
    plan = JobPlan(build_id="b1", namespace="builds", tags=["r/a:1"], secret_name="rtbuild-a-b1-push")
    with pytest.raises(ClusterUnreachableError):
        JobRun(client, settings_from_table({}), plan, dockerconfigjson=b"{}").run()  # type: ignore[arg-type]
    assert ("delete", "Job", plan.job_name) in client.calls
    # The Secret's create, sent only once the Job's has answered, was never sent: nothing to delete.
    assert [call for call in client.calls if call[1] == "Secret"] == []
