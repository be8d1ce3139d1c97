"""What a platform operator meets with the Kubernetes builder when the site is set up wrong:
a broken kubeconfig, a namespace that does not exist, a registry the build pod cannot reach.
Each ends in rtbuild's own error (the exit code docs/cli.md gives), never an internal error,
and leaves nothing in the cluster."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from _kbuilder_support import RTBUILD, Site, clean_env, rtbuild, write_config

pytestmark = [pytest.mark.engine]


def _broken_kubeconfigs(cluster: Any, root: Path) -> dict[str, Path]:
    good = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    files = {"garbage": "clusters: [\n", "a list": "- 1\n- 2\n", "empty": ""}
    bad_ca = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    bad_ca["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(b"not a cert").decode()
    missing_ca = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    del missing_ca["clusters"][0]["cluster"]["certificate-authority-data"]
    missing_ca["clusters"][0]["cluster"]["certificate-authority"] = str(root / "no-such-ca.crt")
    no_user = dict(good, users=[])
    texts = {
        **files,
        **{
            k: yaml.safe_dump(v) for k, v in (("bad CA", bad_ca), ("missing CA file", missing_ca), ("no user", no_user))
        },
    }
    paths = {}
    for name, text in texts.items():
        path = root / f"kubeconfig-{name.replace(' ', '-')}"
        path.write_text(text)
        paths[name] = path
    return paths


def test_a_broken_kubeconfig_is_a_configuration_error(cluster: Any, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    for name, kubeconfig in _broken_kubeconfigs(cluster, tmp_path).items():
        config = write_config(tmp_path / "rtbuild.toml", kubeconfig, skip_unchanged=False)
        env = clean_env(RTBUILD_CONFIG=str(config), HOME=str(tmp_path))
        proc = rtbuild(
            "build", str(context), "--builder", "kubernetes", "-t", "127.0.0.1:9/team/k:1", cwd=tmp_path, env=env
        )
        assert proc.returncode == 2, (name, proc.stderr[-3000:])
        assert "cannot load the Kubernetes configuration" in proc.stderr, (name, proc.stderr[-3000:])
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, (name, proc.stderr[-3000:])
        assert proc.stdout == "", name
    assert cluster.created("jobs") == 0


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_registry_the_build_pod_cannot_reach_is_a_push_error(site: Site, cluster: Any) -> None:
    """buildah retries the push three times: its retry lines push the step's 'pushing' marker
    out of the log tail, and the failure was blamed on the Dockerfile."""
    from _kbuilder_support import step_image_tag

    config = write_config(
        site.root / "rtbuild.toml", Path(cluster.kubeconfig_path), step_image=step_image_tag(), skip_unchanged=False
    )
    context = site.context("unreachable", "FROM scratch\nCOPY f.txt /f.txt\n", {"f.txt": "f\n"})
    tag = f"127.0.0.1:{_closed_port()}/team/unreachable:1"
    env = site.env(RTBUILD_CONFIG=str(config))
    proc = rtbuild("build", str(context), "--builder", "kubernetes", "-t", tag, "--json", cwd=site.root, env=env)
    assert proc.returncode == 1, proc.stderr[-4000:]
    error = json.loads(proc.stdout)
    assert error["error"] == "StepPushError", error
    assert error["step"] == "push" and error["blame"] == "registry", error
    assert "connection refused" in error["message"] and "reachable from the cluster's pods" in error["hint"], error
    cluster.wait_for(lambda: cluster.list("jobs") == [] and cluster.list("secrets") == [], timeout=30)


def test_a_missing_namespace_or_an_unreachable_api_creates_nothing_and_says_only_that(
    cluster: Any, tmp_path: Path
) -> None:
    """A create the API server refused, or never received, left nothing behind: no 'deleted Job'
    event for a Job that never existed, no 'could not delete everything ... kubectl delete' warning."""
    from _kbuilder_support import write_docker_config

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    docker = write_docker_config(tmp_path / "docker", {"127.0.0.1:9": ("robot", "pushpass-123")})  # a Secret is due
    config = write_config(
        tmp_path / "rtbuild.toml", Path(cluster.kubeconfig_path), namespace="no-such-namespace", skip_unchanged=False
    )
    env = clean_env(RTBUILD_CONFIG=str(config), DOCKER_CONFIG=str(docker), HOME=str(tmp_path))
    args = ("build", str(context), "--builder", "kubernetes", "-t", "127.0.0.1:9/team/ns:1")
    proc = rtbuild(*args, "--json", cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    error = json.loads(proc.stdout)
    assert error["error"] == "ConfigError" and "'no-such-namespace' does not exist" in error["message"], error
    assert "kubectl create namespace no-such-namespace" in error["hint"], error
    assert "deleted Job" not in proc.stderr and "could not delete" not in proc.stderr, proc.stderr[-3000:]
    assert cluster.list("jobs", namespace="no-such-namespace") == [] and cluster.created("jobs") == 0

    document = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    document["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{_closed_port()}"
    (tmp_path / "closed-kubeconfig").write_text(yaml.safe_dump(document))
    write_config(tmp_path / "rtbuild.toml", tmp_path / "closed-kubeconfig", skip_unchanged=False)
    proc = rtbuild(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "is unreachable" in proc.stderr, proc.stderr[-3000:]
    assert "could not delete" not in proc.stderr and "kubectl delete" not in proc.stderr, proc.stderr[-3000:]


def _no_pod_build(cluster: Any, tmp_path: Path, **settings: object) -> tuple[Any, float]:
    import subprocess
    import time

    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    config = write_config(tmp_path / "rtbuild.toml", Path(cluster.kubeconfig_path), skip_unchanged=False, **settings)
    env = clean_env(RTBUILD_CONFIG=str(config), HOME=str(tmp_path))
    started = time.monotonic()
    proc: subprocess.CompletedProcess[str] = rtbuild(
        "build", str(context), "--builder", "kubernetes", "-t", "127.0.0.1:9/team/nopod:1", "--json",
        cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    return proc, time.monotonic() - started


def test_a_pod_that_admission_refuses_fails_at_once_with_the_reason(cluster: Any, tmp_path: Path) -> None:
    """Pod Security refuses the privileged build pod: the Job exists, its controller gets
    FailedCreate Events and never a pod. rtbuild waited, silent, for the Job's whole deadline."""
    cluster.faults.refuse_pods(
        'violates PodSecurity "baseline:latest": privileged (container "build" must not set'
        " securityContext.privileged=true)"
    )
    proc, took = _no_pod_build(cluster, tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    error = json.loads(proc.stdout)
    assert error["error"] == "PodRefusedError" and error["step"] == "create build pod", error
    assert "violates PodSecurity" in error["message"] and "Pod Security level" in error["hint"], error
    assert took < 30, f"{took:.1f}s"
    cluster.wait_for(lambda: cluster.list("jobs") == [] and cluster.list("pods") == [], timeout=30)


def test_a_quota_that_never_frees_up_is_named_when_the_deadline_passes(cluster: Any, tmp_path: Path) -> None:
    """A quota may free up, so rtbuild waits, but says so at once, and the deadline's error names
    the quota, not a slow build; it comes with the Job's deadline, not rtbuild's 60 s later."""
    cluster.faults.refuse_pods("exceeded quota: compute, requested: memory=1Gi, used: memory=8Gi, limited: memory=8Gi")
    proc, took = _no_pod_build(cluster, tmp_path, active_deadline_seconds=6)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "the build pod cannot be created yet: exceeded quota" in proc.stderr, proc.stderr[-3000:]
    error = json.loads(proc.stdout)
    assert error["error"] == "DeadlineExceededError" and "without a pod" in error["message"], error
    assert "exceeded quota" in error["message"] and "resourcequota" in error["hint"], error
    assert took < 6 + 30, f"{took:.1f}s"
    cluster.wait_for(lambda: cluster.list("jobs") == [], timeout=30)


def _log_build(site: Site, cluster: Any, name: str) -> Any:
    from _kbuilder_support import step_image_tag

    config = write_config(site.root / "rtbuild.toml", Path(cluster.kubeconfig_path), step_image=step_image_tag())
    context = site.context(name, "FROM BASE\nRUN for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done\n")
    env = site.env(RTBUILD_CONFIG=str(config))
    return rtbuild(
        "build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/{name}:1", cwd=site.root, env=env
    )


def test_a_log_stream_that_ends_while_the_build_runs_is_followed_on(site: Site, cluster: Any) -> None:
    """An API server restart or a proxy's idle timeout ends the pods/log stream: the rest of the
    live log was lost without a word. Now it is opened again, no line shown twice."""
    cluster.faults.drop_next_log(after_bytes=200)
    proc = _log_build(site, cluster, "droppedlog")
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stderr.splitlines()
    assert [lines.count(f"tick-{i}") for i in range(1, 7)] == [1] * 6, proc.stderr[-4000:]
    assert len(cluster.requests_for("get", "pods/log")) >= 2  # it was dropped, and opened again
    assert "live log is not available" not in proc.stderr


def test_a_log_the_account_may_not_read_is_one_warning(site: Site, cluster: Any) -> None:
    """403 on pods/log: the build succeeds (its result is the pod's state), and says why it
    shows no log instead of showing nothing."""
    cluster.faults.forbid("get", "pods/log")
    proc = _log_build(site, cluster, "nolog")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("live log is not available") == 1, proc.stderr[-4000:]
    assert "verb 'get' on resource 'pods/log'" in proc.stderr, proc.stderr[-4000:]


def test_a_private_base_in_another_registry_is_pulled_with_this_machines_credentials(
    site: Site, cluster: Any, registry: Any
) -> None:
    """The Job's Secret held credentials for the tags' and cache registries only: a FROM image
    in another, private registry failed in the pod with 'unauthorized' although `docker login`
    had been done here (the Docker and Podman builders pull it)."""
    from _kbuilder_support import step_image_tag

    config = write_config(site.root / "rtbuild.toml", Path(cluster.kubeconfig_path), step_image=step_image_tag())
    context = site.context("privatebase", "FROM BASE\nRUN echo from-a-private-base > /where\n")
    env = site.env(RTBUILD_CONFIG=str(config))
    tag = f"{registry.host}/team/privatebase:1"  # the tags' registry needs no login; the base's does
    proc = rtbuild("build", str(context), "--builder", "kubernetes", "-t", tag, cwd=site.root, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "from-a-private-base" in proc.stderr
    assert site.password not in proc.stderr and site.password not in proc.stdout
    cluster.wait_for(lambda: cluster.list("secrets") == [], timeout=30)


def test_a_build_rides_out_a_short_api_server_outage(site: Site, cluster: Any) -> None:
    """The API server restarts for a few seconds while the build runs (connections reset, new
    ones refused). rtbuild gave up at once: exit 1, and the Job, which it could not delete
    then, went on to push the image it had reported as failed."""
    import subprocess
    import time

    from _k8s_api_proxy import ApiProxy
    from _kbuilder_support import step_image_tag

    proxy = ApiProxy(int(cluster.url.rsplit(":", 1)[1]))
    document = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    document["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    (site.root / "proxied-kubeconfig").write_text(yaml.safe_dump(document))
    config = write_config(site.root / "rtbuild.toml", site.root / "proxied-kubeconfig", step_image=step_image_tag())
    context = site.context("outage", "FROM BASE\nRUN for i in 1 2 3 4 5; do echo tick-$i; sleep 1; done\n")
    args = ["build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/outage:1"]
    env = site.env(RTBUILD_CONFIG=str(config))
    proc = subprocess.Popen(
        [RTBUILD, *args], cwd=site.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        def build_running() -> bool:
            for pod in cluster.list("pods"):
                for status in (pod.get("status") or {}).get("containerStatuses") or []:
                    if status.get("name") == "build" and "running" in (status.get("state") or {}):
                        return True
            return proc.poll() is not None

        cluster.wait_for(build_running, timeout=120)
        time.sleep(1)
        proxy.down()
        time.sleep(8)  # longer than the rest of the build: the container ends meanwhile
        proxy.up()
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        proxy.down()
    assert proc.returncode == 0, stderr[-4000:]
    assert "unreachable" not in stderr, stderr[-4000:]
    # The log stream the outage broke looked ended to the client: the lines written meanwhile
    # come from one last read once the container has ended, none of them twice.
    assert [stderr.splitlines().count(f"tick-{i}") for i in range(1, 6)] == [1] * 5, stderr[-4000:]
    cluster.wait_for(lambda: cluster.list("secrets") == [], timeout=30)


def test_a_job_someone_else_deleted_is_not_reported_as_deleted_by_rtbuild(
    site: Site, cluster: Any, kubectl: str, kube_env: dict[str, str]
) -> None:
    """An operator deletes the build's Job while it runs: the build fails, and rtbuild said
    "deleted Job ... and its pods" although its own delete found nothing left (a 404)."""
    import subprocess

    from _kbuilder_support import step_image_tag

    config = write_config(site.root / "rtbuild.toml", Path(cluster.kubeconfig_path), step_image=step_image_tag())
    context = site.context("gonejob", "FROM BASE\nRUN for i in $(seq 1 60); do echo tick-$i; sleep 1; done\n")
    args = ["build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/gonejob:1"]
    proc = subprocess.Popen(
        [RTBUILD, *args], cwd=site.root, env=site.env(RTBUILD_CONFIG=str(config)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def build_running() -> bool:  # the RUN step's loop is under way
            for pod in cluster.list("pods"):
                for status in (pod.get("status") or {}).get("containerStatuses") or []:
                    if status.get("name") == "build" and "running" in (status.get("state") or {}):
                        return True
            return proc.poll() is not None

        cluster.wait_for(build_running, timeout=120)
        job = cluster.list("jobs")[0]["metadata"]
        deleted = subprocess.run(
            [kubectl, "delete", "job", job["name"], "-n", job["namespace"], "--wait=false"],
            env=kube_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode not in (0, 3), stderr[-4000:]  # it failed, and not as an internal error
    assert "deleted Job" not in stderr, stderr[-4000:]
    # The pod, killed by the Job's deletion (exit code 143), was reported as a failed RUN step
    # blamed on the Dockerfile, or as a pod 'something' deleted.
    assert f"the build Job {job['name']} was deleted while waiting for the build to finish" in stderr, stderr[-4000:]
    assert "fix the failing Dockerfile step" not in stderr, stderr[-4000:]
    assert "live log is not available" not in stderr, stderr[-4000:]  # the pod is gone, not its log
    assert "Traceback" not in stderr, stderr[-4000:]
    cluster.wait_for(lambda: cluster.list("secrets") == [], timeout=30)


def test_after_one_outage_is_waited_out_in_vain_the_next_calls_fail_at_once(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build failed because the API server stayed away for OUTAGE_S; its clean-up (delete
    the Job, delete the Secret) then waited OUTAGE_S again for each call, so rtbuild took about
    three outage budgets to exit. The first call waits; the next fail at once; an answer
    resets it."""
    import time

    from _k8s_api_proxy import ApiProxy
    from rtbuild.errors import AgentRuntimeBuildError
    from rtbuild_kubernetes import client as kclient
    from rtbuild_kubernetes.settings import settings_from_table

    monkeypatch.setattr(kclient, "OUTAGE_S", 3.0)
    monkeypatch.setattr(kclient, "OUTAGE_PAUSE_S", 0.2)
    proxy = ApiProxy(int(cluster.url.rsplit(":", 1)[1]))
    document = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    document["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = Path(cluster.kubeconfig_path).with_name(f"proxied-{proxy.port}")
    kubeconfig.write_text(yaml.safe_dump(document))
    try:
        client = kclient.LightkubeClient(settings_from_table({"kubeconfig": str(kubeconfig)}))
        assert client.get("Job", "no-such-job") is None  # it answered: a refusal is now an outage
        proxy.down()
        timings = []
        for call in (lambda: client.get("Job", "no-such-job"), lambda: client.delete("Job", "no-such-job")):
            started = time.monotonic()
            with pytest.raises(AgentRuntimeBuildError, match="unreachable"):
                call()
            timings.append(time.monotonic() - started)
        assert timings[0] >= 3.0, timings  # the first call rode the outage out as long as it may
        assert timings[1] < 1.5, timings  # the next one did not wait again
        proxy.up()
        assert client.delete("Job", "no-such-job") is False  # answered (404): already gone
        proxy.down()
        started = time.monotonic()
        with pytest.raises(AgentRuntimeBuildError, match="unreachable"):
            client.get("Job", "no-such-job")
        assert time.monotonic() - started >= 3.0  # an answer in between: a new outage is waited out again
    finally:
        proxy.down()
        kubeconfig.unlink()
