"""End to end: ``rtbuild build --builder kubernetes`` through the fake cluster, where the
real buildah step image builds real Dockerfiles and pushes to Debian's docker-registry on
127.0.0.1. Nothing is mocked below the API server's protocol: the Job's pod runs in dockerd.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _kbuilder_support import DOCKER, RTBUILD, Site, rtbuild, write_config

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


def _config(site: Site, cluster: Any, **settings: object) -> Path:
    return write_config(site.root / "rtbuild.toml", Path(cluster.kubeconfig_path), step_image=_tag(), **settings)


def _tag() -> str:
    from _kbuilder_support import step_image_tag

    return step_image_tag()


def _build(site: Site, context: Path, *tags: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    args = ["build", str(context), "--builder", "kubernetes"]
    for tag in tags:
        args += ["-t", tag]
    return rtbuild(*args, *extra, cwd=site.root, env=site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml")))


def _jobs(cluster: Any) -> list[dict[str, Any]]:
    return [j for j in cluster.list("jobs", namespace=cluster.namespace)]


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=300)


def test_build_pushes_every_tag_runs_and_unchanged_rebuild_creates_no_job(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context(
        "app",
        'FROM BASE\nARG GREETING=hello\nRUN echo "$GREETING from k8s" > /greeting.txt\nCOPY data/ /data/\n',
        {"data/a.txt": "file-a\n", "ignored.log": "not sent\n", ".dockerignore": "*.log\n"},
    )
    image = f"{site.registry}/team/app"
    proc = _build(site, context, f"{image}:1", f"{image}:latest")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1].endswith(f"{image}:1")
    assert "from k8s" in proc.stderr or "STEP" in proc.stderr  # the pod's log, followed live
    assert len(cluster.requests_for(verb="create", resource="jobs")) == 1
    # The per-build credentials Secret is gone; the pod never had them in its env.
    assert cluster.list("secrets", namespace=cluster.namespace) == []
    auth = json.loads((site.docker_config / "config.json").read_text())["auths"][site.registry]["auth"]
    for obj in _jobs(cluster) + cluster.list("pods", namespace=cluster.namespace):
        text = json.dumps(obj)
        assert auth not in text and site.password not in text, text[text.find(auth) - 300 : text.find(auth) + 100]
    assert auth not in proc.stderr and site.password not in proc.stderr
    # The image runs in dockerd with the expected content, pulled from the registry.
    pulled = _docker("--config", str(site.docker_config), "pull", f"{image}:latest")
    assert pulled.returncode == 0, pulled.stderr
    ran = _docker("run", "--rm", f"{image}:latest", "sh", "-c", "cat /greeting.txt /data/a.txt; ls /")
    assert ran.returncode == 0, ran.stderr
    assert "hello from k8s" in ran.stdout and "file-a" in ran.stdout and "ignored.log" not in ran.stdout
    _docker("rmi", f"{image}:latest")
    # Unchanged: no Job, no Secret, no pod.
    cluster.clear_requests()
    again = _build(site, context, f"{image}:1", f"{image}:latest")
    assert again.returncode == 0, again.stderr[-4000:]
    assert cluster.requests_for(verb="create") == []
    assert "no input changed" in again.stderr


def test_failing_run_step_reports_exit_code_and_log_tail_and_deletes_the_job(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context("fails", "FROM BASE\nRUN echo before-the-failure && exit 7\n")
    proc = _build(site, context, f"{site.registry}/team/fails:1")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "exit code 7" in proc.stderr or "exit status 7" in proc.stderr, proc.stderr[-3000:]
    assert "before-the-failure" in proc.stderr
    assert "RunStepFailedError" in rtbuild_json_error(site, context)
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


@pytest.mark.parametrize(
    ("run", "words"),
    [
        # /dev/full answers every write with ENOSPC: the pod's disk full, for real.
        ("RUN dd if=/dev/zero of=/dev/full bs=1k count=1", "disk the build writes to is full"),
        # SIGKILL, the OOM killer's signal, without an OOMKilled reason on the container.
        ("RUN sh -c 'kill -9 $$' || exit $?", "killed with SIGKILL (exit 137)"),
    ],
    ids=["disk-full", "sigkill"],
)
def test_a_step_the_host_stopped_is_not_blamed_on_the_dockerfile(
    site: Site, cluster: Any, run: str, words: str
) -> None:
    _config(site, cluster)
    context = site.context("host-fault", f"FROM BASE\n{run}\n")
    proc = rtbuild(
        "build", "--json", "-q", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/host:1",
        cwd=site.root, env=site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml")),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    error = json.loads(proc.stdout)
    assert error["error"] == "RunStepFailedError" and words in error["hint"], error
    assert error["blame"] == "build resources"


def rtbuild_json_error(site: Site, context: Path) -> str:
    proc = rtbuild(
        "build",
        "--json",
        str(context),
        "--builder",
        "kubernetes",
        "-t",
        f"{site.registry}/team/fails:2",
        cwd=site.root,
        env=site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml")),
    )
    return proc.stdout + proc.stderr


def test_deadline_stops_and_deletes_the_job(site: Site, cluster: Any) -> None:
    _config(site, cluster, active_deadline_seconds=20)
    context = site.context("slow", "FROM BASE\nRUN sleep 300\n")
    proc = _build(site, context, f"{site.registry}/team/slow:1")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "deadline" in proc.stderr.lower()
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


def test_ctrl_c_deletes_the_job_and_its_pod(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context("interrupted", "FROM BASE\nRUN sleep 300\n")
    env = site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml"))
    args = [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/int:1"]
    proc = subprocess.Popen(args, cwd=site.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cluster.wait_for(lambda: _running_build_pod(cluster), timeout=180)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    cluster.wait_for(lambda: _jobs(cluster) == [] and cluster.list("pods", namespace=cluster.namespace) == [], 60)
    assert cluster.list("secrets", namespace=cluster.namespace) == []


def _running_build_pod(cluster: Any) -> bool:
    for pod in cluster.list("pods", namespace=cluster.namespace):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == "build" and "running" in (status.get("state") or {}):
                return True
    return False


def test_forbidden_exec_names_the_rbac_rule(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    cluster.faults.forbid("create", "pods/exec")
    context = site.context("forbidden", "FROM BASE\nRUN true\n")
    proc = _build(site, context, f"{site.registry}/team/forbidden:1")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "pods/exec" in proc.stderr and "RBAC" in proc.stderr
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


def test_registry_transport_builds_without_exec(site: Site, cluster: Any) -> None:
    _config(site, cluster, transport="registry")
    context = site.context("viareg", "FROM BASE\nCOPY msg.txt /msg.txt\n", {"msg.txt": "through the registry\n"})
    image = f"{site.registry}/team/viareg:1"
    proc = _build(site, context, image)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert cluster.requests_for(resource="pods/exec") == []
    pulled = _docker("--config", str(site.docker_config), "pull", image)
    assert pulled.returncode == 0, pulled.stderr
    ran = _docker("run", "--rm", image, "cat", "/msg.txt")
    assert ran.stdout == "through the registry\n"
    _docker("rmi", image)


def test_platform_without_a_matching_node_is_unschedulable(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context("arm", "FROM BASE\nRUN true\n")
    proc = _build(site, context, f"{site.registry}/team/arm:1", extra=("--platform", "linux/arm64"))
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "no node can run the build pod" in proc.stderr and "kubernetes.io/arch" in proc.stderr
    assert "didn't match" in proc.stderr  # the scheduler's own reason
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


def test_missing_step_image_is_reported_with_the_build_hint(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    write_config(
        site.root / "rtbuild.toml",
        Path(cluster.kubeconfig_path),
        step_image="rtbuild/no-such-step:0",
        image_pull_policy="Never",
    )
    context = site.context("nostep", "FROM BASE\nRUN true\n")
    proc = _build(site, context, f"{site.registry}/team/nostep:1")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "cannot pull the build step image" in proc.stderr and "step_image" in proc.stderr
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


def test_throttling_and_a_dropped_watch_are_survived(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    cluster.faults.fail_next(2, status=429, verb="create", resource="jobs", retry_after=1)
    # The upload's websocket upgrade throttled, then a server error: asked again (it failed the build).
    cluster.faults.fail_next(1, status=429, verb="create", resource="pods/exec", retry_after=1)
    cluster.faults.fail_next(1, status=503, verb="create", resource="pods/exec", retry_after=None)
    cluster.faults.drop_next_watch(after_events=1)
    context = site.context("flaky", "FROM BASE\nCOPY f.txt /f.txt\n", {"f.txt": "flaky api\n"})
    proc = _build(site, context, f"{site.registry}/team/flaky:1")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert cluster.created("jobs") == 1
    assert [r.status for r in cluster.requests_for(verb="create", resource="pods/exec")][:2] == [429, 503]


def test_expired_credentials_and_unreachable_api(site: Site, cluster: Any) -> None:
    context = site.context("auth", "FROM BASE\nRUN true\n")
    bad = cluster.write_kubeconfig(site.root / "bad-kubeconfig", token="expired-token")
    write_config(site.root / "rtbuild.toml", Path(bad), step_image=_tag())
    proc = _build(site, context, f"{site.registry}/team/auth:1")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "401" in proc.stderr and "expired" in proc.stderr
    import socket

    import yaml

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    document = yaml.safe_load(Path(cluster.kubeconfig_path).read_text())
    for entry in document["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    (site.root / "closed-kubeconfig").write_text(yaml.safe_dump(document))
    write_config(site.root / "rtbuild.toml", site.root / "closed-kubeconfig", step_image=_tag())
    proc = _build(site, context, f"{site.registry}/team/auth:2")
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "unreachable" in proc.stderr and "Traceback" not in proc.stderr


def test_exec_upload_over_v4_ends_by_byte_count(site: Site, cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # In process, with the client pinned to v4.channel.k8s.io: no stdin close signal exists,
    # so only `head -c SIZE` in the pod ends the upload.
    from rtbuild import BuildRequest
    from rtbuild_kubernetes.builder import KubernetesBuilder
    from rtbuild_kubernetes.client import V4, LightkubeClient
    from rtbuild_kubernetes.settings import settings_from_table

    monkeypatch.setenv("DOCKER_CONFIG", str(site.docker_config))
    settings = settings_from_table({"kubeconfig": str(cluster.kubeconfig_path), "step_image": _tag()})
    client = LightkubeClient(settings)
    client.subprotocols = (V4,)
    builder = KubernetesBuilder(settings, client=client)
    builder.name = "kubernetes"
    context = site.context("v4", "FROM BASE\nCOPY big.txt /big.txt\n", {"big.txt": "v4 upload\n" * 50_000})
    result = builder.build_request(BuildRequest(str(context), tags=[f"{site.registry}/team/v4:1"]))
    assert result.details["digest"].startswith("sha256:")
    execs = cluster.requests_for(resource="pods/exec")
    assert len(execs) == 1
    assert builder.inspect_image(f"{site.registry}/team/v4:1") is not None


def test_two_platforms_are_two_jobs_and_one_index_under_every_tag(site: Site, tmp_path: Path) -> None:
    # A cluster of its own, with an arm64 node beside the host's amd64 one (its pods run here
    # too, so the Dockerfile has no RUN step and no base image to emulate).
    import httpx
    from fake_cluster import FakeCluster

    with FakeCluster(workdir=tmp_path / "multi-cluster", extra_archs=("arm64",)) as multi:
        write_config(site.root / "rtbuild.toml", Path(multi.kubeconfig_path), step_image=_tag())
        context = site.context("multi", "FROM scratch\nCOPY hello.txt /hello.txt\n", {"hello.txt": "both\n"})
        image = f"{site.registry}/team/multi"
        proc = _build(site, context, f"{image}:1", f"{image}:latest", extra=("--platform", "linux/amd64,linux/arm64"))
        assert proc.returncode == 0, proc.stderr[-4000:]
        jobs = multi.requests_for(verb="create", resource="jobs")
        assert len(jobs) == 2
        # Unchanged: every platform's image (buildah's config names its platform) is current.
        again = _build(site, context, f"{image}:1", f"{image}:latest", extra=("--platform", "linux/amd64,linux/arm64"))
        assert again.returncode == 0, again.stderr[-4000:]
        assert "no Job created" in again.stderr, again.stderr[-4000:]
        assert len(multi.requests_for(verb="create", resource="jobs")) == 2
    # Both platforms' Jobs and step logs reach the user (their threads keep the reporter).
    assert proc.stderr.count("created Job ") == 2, proc.stderr[-4000:]
    for platform in ("linux/amd64", "linux/arm64"):  # each line names its platform
        assert f"[{platform}] rtbuild-step: pushing" in proc.stderr, proc.stderr[-4000:]
    auth = (site.docker_config / "config.json").read_text()
    import base64
    import json as _json

    user, password = base64.b64decode(_json.loads(auth)["auths"][site.registry]["auth"]).decode().split(":", 1)
    accept = "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
    for tag in ("1", "latest"):
        response = httpx.get(
            f"http://{site.registry}/v2/team/multi/manifests/{tag}", headers={"Accept": accept}, auth=(user, password)
        )
        assert response.status_code == 200, response.text
        platforms = {(m["platform"]["os"], m["platform"]["architecture"]) for m in response.json()["manifests"]}
        assert platforms == {("linux", "amd64"), ("linux", "arm64")}
        for entry in response.json()["manifests"]:  # each platform image outlives its temporary tag
            child = httpx.get(
                f"http://{site.registry}/v2/team/multi/manifests/{entry['digest']}",
                headers={"Accept": entry["mediaType"]},
                auth=(user, password),
            )
            assert child.status_code == 200, child.text
    # The Jobs' temporary per-platform tags are gone, without a warning.
    listed = httpx.get(f"http://{site.registry}/v2/team/multi/tags/list", auth=(user, password)).json()
    assert sorted(listed["tags"]) == ["1", "latest"]
    assert "temporary per-platform tag" not in proc.stderr


def test_cli_dry_run_prints_manifests_that_pass_kubernetes_validate(site: Site, cluster: Any) -> None:
    import sys

    _config(site, cluster)
    context = site.context("dry", "FROM BASE\nRUN true\n")
    proc = _build(site, context, f"{site.registry}/team/dry:1", extra=("--dry-run", "--platform", "linux/arm64"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert cluster.requests_for(verb="create") == []  # nothing applied
    manifest = site.root / "dry-run.yaml"
    manifest.write_text(proc.stdout)
    assert "kind: Job" in proc.stdout and "kubernetes.io/arch: arm64" in proc.stdout
    kv = str(Path(sys.executable).with_name("kubernetes-validate"))
    for version in ("1.30.0", "1.37.0"):
        checked = subprocess.run([kv, "--strict", "--quiet", "-k", version, str(manifest)], capture_output=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_evicted_pod_is_reported_and_the_job_deleted(site: Site, cluster: Any) -> None:
    _config(site, cluster)
    context = site.context("evicted", "FROM BASE\nRUN sleep 300\n")
    env = site.env(RTBUILD_CONFIG=str(site.root / "rtbuild.toml"))
    args = [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/team/evicted:1"]
    proc = subprocess.Popen(args, cwd=site.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cluster.wait_for(lambda: _running_build_pod(cluster), timeout=180)
        pod = cluster.list("pods", namespace=cluster.namespace)[0]["metadata"]["name"]
        cluster.faults.evict(pod)
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr[-3000:]
    assert "evicted" in stderr
    cluster.wait_for(lambda: _jobs(cluster) == [], timeout=60)


def test_a_change_between_the_hash_and_the_upload_leaves_no_label(
    site: Site, cluster: Any, monkeypatch: pytest.MonkeyPatch, edited_meanwhile: Callable[..., Any]
) -> None:
    """rtbuild tars the context after hashing it: an edit in between (written back after)
    must not give the pushed image a label naming the bytes it does not hold."""
    import rtbuild_kubernetes.context_tar
    from rtbuild import BuildRequest
    from rtbuild.enginekit import DIGEST_LABEL
    from rtbuild_kubernetes.builder import KubernetesBuilder
    from rtbuild_kubernetes.settings import settings_from_table

    monkeypatch.setenv("DOCKER_CONFIG", str(site.docker_config))
    settings = settings_from_table({"kubeconfig": str(cluster.kubeconfig_path), "step_image": _tag()})
    builder = KubernetesBuilder(settings)
    builder.name = "kubernetes"
    context = site.context("race", "FROM BASE\nCOPY data.txt /data.txt\n", {"data.txt": "one\n"})
    data = context / "data.txt"
    request = BuildRequest(str(context), tags=[f"{site.registry}/team/race:1"])
    builder.build_request(request)
    data.write_text("two\n")
    with edited_meanwhile(rtbuild_kubernetes.context_tar, "write_context_tar", data, "meanwhile\n", "two\n"):
        raced = builder.build_request(request)
    assert not raced.cached and "input_digest" not in raced.details
    info = builder.inspect_image(request.tags[0])
    assert info is not None and DIGEST_LABEL not in info.labels
    again = builder.build_request(request)
    assert not again.cached, "the image holding 'meanwhile' was reused for 'two'"
    assert builder.build_request(request).cached


def test_a_silent_pod_watch_still_hands_back_control(fake_cluster: Any) -> None:
    """lightkube re-opens a watch the server ends and reads with no timeout: with no pod
    event at all, watch_pods must still yield a TICK so the caller can see its deadline."""
    import time

    from rtbuild_kubernetes.client import TICK, TICK_S, LightkubeClient
    from rtbuild_kubernetes.settings import settings_from_table

    client = LightkubeClient(settings_from_table({"kubeconfig": str(fake_cluster.kubeconfig_path)}))
    _pods, version = client.list_pods({"rtbuild.test/none": "x"})
    started = time.monotonic()
    events = client.watch_pods({"rtbuild.test/none": "x"}, version)
    try:
        kind, pod = next(events)
    finally:
        events.close()
    assert (kind, pod) == (TICK, {})
    assert time.monotonic() - started < TICK_S + 5
