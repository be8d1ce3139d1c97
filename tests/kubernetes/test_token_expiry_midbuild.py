"""The cluster credentials stop working mid-build (a service-account, OIDC or exec-plugin token
expiring, a revoked token): the API answers 401 to the next list or poll of the build pod. The
error blamed the builder (blame 'builder kubernetes') and said nothing of the Job, which the
same credentials could not delete: it went on building and pushed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from _kbuilder_support import Site, build_in_progress


class _TokenExpires:
    """The Job's create works; then every call answers 401, the Job's delete too unless ``delete_works``."""

    namespace = "builds"

    def __init__(self, delete_works: bool) -> None:
        self.delete_works = delete_works
        self.deleted: list[tuple[str, str]] = []
        self.gave_up = self.stopping = False

    def _refused(self, verb: str, resource: str) -> Exception:
        from rtbuild_kubernetes.clusterauth import auth_error

        return auth_error(verb, resource, 401, "Unauthorized", self.namespace)

    def create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, "metadata": {**obj["metadata"], "uid": "u1"}}

    def delete(self, kind: str, name: str, *, propagation: str = "Background") -> bool:
        if not self.delete_works:
            raise self._refused("delete", kind.lower() + "s")
        self.deleted.append((kind, name))
        return True

    def list_pods(self, selector: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
        raise self._refused("list", "pods")

    def watch_pods(self, selector: dict[str, str], version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        raise self._refused("watch", "pods")


def _run(client: _TokenExpires) -> Any:
    from rtbuild_kubernetes.failures import ClusterAuthError
    from rtbuild_kubernetes.jobrun import JobRun
    from rtbuild_kubernetes.manifests import JobPlan
    from rtbuild_kubernetes.settings import settings_from_table

    plan = JobPlan(build_id="b1", namespace="builds", tags=["r/a:1"])
    with pytest.raises(ClusterAuthError) as raised:
        JobRun(client, settings_from_table({}), plan).run()  # type: ignore[arg-type]
    return raised.value, plan.job_name


def test_a_token_expiring_mid_build_blames_the_credentials_and_deletes_the_job() -> None:
    client = _TokenExpires(delete_works=True)  # an exec plugin's fresh token works again for the delete
    error, job = _run(client)
    assert error.blame == "cluster credentials", error.blame
    assert "(HTTP 401) on list pods during the build" in error.message, error.message
    assert f"the build Job {job} was deleted" in error.message and "by hand" not in error.message
    assert "refresh the kubeconfig's token" in (error.hint or ""), error.hint
    assert ("Job", job) in client.deleted


def test_a_job_the_expired_token_cannot_delete_is_said_to_be_left_running() -> None:
    error, job = _run(_TokenExpires(delete_works=False))
    assert error.blame == "cluster credentials", error.blame
    assert f"the build Job {job} in namespace builds may still be running" in error.message, error.message
    assert "must be removed by hand" in error.message and str(error) == error.message
    assert "refresh the kubeconfig's token" in (error.hint or ""), error.hint
    assert "kubectl delete job,secret -l rtbuild.dev/build-id=b1 -n builds" in (error.hint or ""), error.hint


def test_a_401_at_the_start_blames_the_credentials_and_names_no_job() -> None:
    from rtbuild_kubernetes.clusterauth import auth_error

    error = auth_error("create", "jobs", 401, "Unauthorized", "builds")
    assert error.blame == "cluster credentials" and "Job" not in error.message
    assert auth_error("create", "jobs", 403, "forbidden", "builds").blame == "cluster permissions (RBAC)"


@pytest.mark.engine
def test_a_token_expiring_mid_build_on_the_fake_cluster(
    site: Site, cluster: Any, kubectl: str, kube_env: dict[str, str]
) -> None:
    """The real client: a token that stops working while the build runs (every request 401 from
    then on; the open watch ends, as it does at its timeout) ends the build at once, naming the
    Job it had to leave running."""
    with build_in_progress(site, cluster, "expiry") as (proc, _):
        try:
            cluster.faults.unauthorized = True
            cluster.faults.drop_watches()
            stdout, stderr = proc.communicate(timeout=120)
            job = cluster.list("jobs")[0]["metadata"]["name"]  # left: the delete was refused too
            shown = subprocess.run([kubectl, "get", "jobs", "-n", cluster.namespace], env=kube_env, capture_output=True)
            assert shown.returncode != 0 and b"You must be logged in" in shown.stderr, shown.stderr
        finally:
            cluster.faults.unauthorized = False
    assert proc.returncode == 1, stderr[-4000:]
    error = json.loads(stdout)
    assert error["error"] == "ClusterAuthError" and error["blame"] == "cluster credentials", error
    assert "HTTP 401" in error["message"] and "during the build" in error["message"], error
    assert f"the build Job {job} in namespace {cluster.namespace} may still be running" in error["message"], error
    assert "refresh the kubeconfig's token" in error["hint"], error
    assert f"-n {cluster.namespace}" in error["hint"], error
    # The credentials work again: the command the hint gives removes what was left.
    removal = ["delete", *error["hint"].split("`kubectl delete ", 1)[1].split("`", 1)[0].split()]
    done = subprocess.run([kubectl, *removal], env=kube_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cluster.wait_for(lambda: cluster.list("jobs") == [] and cluster.list("secrets") == [], timeout=60)
