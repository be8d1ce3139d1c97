"""The fake cluster stays honest: the machine's real kubectl (a reference client we did not write)
works against it and sees what lightkube sees, the kubelet stand-in really runs the pods in
dockerd, and every fault switch does what it says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from conftest import BUSYBOX
from fake_cluster import FakeCluster
from httpx2.websockets import WebSocketDisconnect, WebSocketNetworkError, WebSocketUpgradeError
from lightkube import ApiError, Client, KubeConfig
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Pod, Secret
from lightkube.types import CascadeType
from wsproto.utilities import LocalProtocolError

pytestmark = [pytest.mark.engine, pytest.mark.timeout(120)]
Obj = dict[str, Any]


def job_manifest(name: str, command: list[str], **pod_spec: Any) -> Obj:
    container = {"name": "main", "image": BUSYBOX, "command": command}
    container.update(pod_spec.pop("container", {}))
    spec: Obj = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container], **pod_spec}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "rtbuild-test"}},
        "spec": {"backoffLimit": 0, "template": {"spec": spec}},
    }


class Kubectl:
    def __init__(self, path: str, env: dict[str, str], tmp: Path) -> None:
        self.path, self.env, self.tmp = path, env, tmp

    def run(self, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([self.path, *args], input=stdin, capture_output=True, env=self.env, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} -> {proc.returncode}: {proc.stderr.decode()[-2000:]}")
        return proc

    def json(self, *args: str) -> Obj:
        result: Obj = json.loads(self.run(*args, "-o", "json").stdout)
        return result

    def apply(self, manifest: Obj) -> None:
        path = self.tmp / f"{manifest['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(manifest))
        self.run("apply", "-f", str(path))


@pytest.fixture
def kctl(kubectl: str, kube_env: dict[str, str], tmp_path: Path) -> Kubectl:
    return Kubectl(kubectl, kube_env, tmp_path)


@pytest.fixture
def lk(cluster: FakeCluster) -> Client:
    return Client(KubeConfig.from_file(str(cluster.kubeconfig_path)), namespace=cluster.namespace)


def pod_of(cluster: FakeCluster, job: str, *phases: str) -> Obj:
    """The Job's pod, once it is in one of ``phases`` (any phase when none are given)."""

    def find() -> Obj | None:
        pods = cluster.list("pods", label_selector=f"job-name={job}")
        return next((p for p in pods if not phases or p["status"].get("phase") in phases), None)

    return cluster.wait_for(find)


def job_condition(cluster: FakeCluster, job: str) -> Obj:
    def find() -> Obj | None:
        obj = cluster.get("jobs", job)
        conditions = (obj or {}).get("status", {}).get("conditions") or []
        return next((c for c in conditions if c["type"] in ("Complete", "Failed")), None)

    return cluster.wait_for(find)


# -- kubectl and lightkube see the same cluster ------------------------------------------------
def test_kubectl_apply_get_wait_and_lightkube_agree(cluster: FakeCluster, kctl: Kubectl, lk: Client) -> None:
    kctl.apply(job_manifest("agree", ["sh", "-c", "echo hi; printf built > /dev/termination-log"]))
    kctl.run("wait", "--for=condition=complete", "job/agree", "--timeout=30s")

    k_jobs = kctl.json("get", "jobs")["items"]
    k_pods = kctl.json("get", "pods", "-l", "job-name=agree")["items"]
    l_job = lk.get(Job, "agree")
    l_pods = list(lk.list(Pod, labels={"job-name": "agree"}))
    assert [j["metadata"]["uid"] for j in k_jobs] == [l_job.metadata.uid]
    assert k_jobs[0]["metadata"]["resourceVersion"] == l_job.metadata.resourceVersion
    assert k_jobs[0]["status"]["succeeded"] == l_job.status.succeeded == 1
    assert (
        {c["type"] for c in k_jobs[0]["status"]["conditions"]}
        == {c.type for c in l_job.status.conditions}
        == {
            "SuccessCriteriaMet",
            "Complete",
        }
    )
    assert [p["metadata"]["name"] for p in k_pods] == [p.metadata.name for p in l_pods]
    k_state = k_pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    l_state = l_pods[0].status.containerStatuses[0].state.terminated
    assert (k_state["exitCode"], k_state["reason"], k_state["message"]) == (0, "Completed", "built")
    assert (l_state.exitCode, l_state.reason, l_state.message) == (0, "Completed", "built")
    # The API server's defaulting: selector and pod labels tie the pod to its Job.
    assert l_pods[0].metadata.labels["controller-uid"] == l_job.metadata.uid
    assert l_pods[0].metadata.ownerReferences[0].uid == l_job.metadata.uid
    assert l_job.spec.selector.matchLabels == {"batch.kubernetes.io/controller-uid": l_job.metadata.uid}
    # kubectl's object is the stored object, byte for byte in the fields both carry.
    stored = cluster.get("jobs", "agree")
    assert stored is not None and stored["status"] == k_jobs[0]["status"]


def test_kubectl_human_output_get_and_describe(cluster: FakeCluster, kctl: Kubectl) -> None:
    kctl.apply(job_manifest("human", ["sh", "-c", "exit 0"]))
    kctl.run("wait", "--for=condition=complete", "job/human", "--timeout=30s")
    pods = kctl.run("get", "pods").stdout.decode().splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[1:4] == ["0/1", "Completed", "0"]
    assert kctl.run("get", "jobs").stdout.decode().splitlines()[1].split()[:3] == ["human", "Complete", "1/1"]
    described = kctl.run("describe", "job", "human").stdout.decode()
    assert "SuccessfulCreate" in described and "Pods Statuses:" in described


def test_backoff_limit_retries_with_a_new_pod(cluster: FakeCluster, lk: Client) -> None:
    manifest = job_manifest("retry", ["false"])
    manifest["spec"]["backoffLimit"] = 1
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
    condition = job_condition(cluster, "retry")
    assert (condition["type"], condition["reason"]) == ("Failed", "BackoffLimitExceeded")
    job = lk.get(Job, "retry")
    assert job.status.failed == 2
    assert len(cluster.list("pods", label_selector="job-name=retry")) == 2


def test_ttl_after_finished_deletes_job_and_pods(cluster: FakeCluster, lk: Client) -> None:
    manifest = job_manifest("ttl", ["true"])
    manifest["spec"]["ttlSecondsAfterFinished"] = 0
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
    cluster.wait_for(lambda: cluster.created("jobs") == 1 and cluster.get("jobs", "ttl") is None)
    cluster.wait_for(lambda: not cluster.list("pods", label_selector="job-name=ttl"))
    cluster.wait_for(lambda: cluster.containers() == [])


def test_foreground_delete_and_api_eviction(cluster: FakeCluster, lk: Client) -> None:
    lk.create(Job.from_dict(job_manifest("fg", ["sleep", "60"])))  # type: ignore[no-untyped-call]
    lk.create(Job.from_dict(job_manifest("ev", ["sleep", "60"])))  # type: ignore[no-untyped-call]
    pod_of(cluster, "fg", "Running")
    evicted = pod_of(cluster, "ev", "Running")["metadata"]["name"]
    lk.delete(Job, "fg", cascade=CascadeType.FOREGROUND, grace_period=0)
    cluster.wait_for(lambda: cluster.get("jobs", "fg") is None)  # gone only after its pods
    assert not cluster.list("pods", label_selector="job-name=fg")
    from lightkube.models.meta_v1 import ObjectMeta

    lk.create(Pod.Eviction(metadata=ObjectMeta(name=evicted, namespace=cluster.namespace)), name=evicted)
    cluster.wait_for(lambda: cluster.get("pods", evicted) is None)


def test_logs_follow_kubectl_and_lightkube(cluster: FakeCluster, kctl: Kubectl, lk: Client) -> None:
    script = "for i in 1 2 3; do echo line-$i; sleep 0.3; done; echo to-stderr >&2"
    kctl.apply(job_manifest("logs", ["sh", "-c", script]))
    # On a busy machine the short script may be over before we look: follow works on both.
    pod = pod_of(cluster, "logs", "Running", "Succeeded")["metadata"]["name"]
    followed = kctl.run("logs", "-f", pod).stdout.decode().splitlines()
    assert followed == ["line-1", "line-2", "line-3", "to-stderr"]
    assert list(lk.log(pod, follow=True)) == [line + "\n" for line in followed]
    assert kctl.run("logs", "job/logs", "--tail=1").stdout.decode() == "to-stderr\n"
    stamped = kctl.run("logs", pod, "--timestamps").stdout.decode().splitlines()
    assert stamped[0].endswith(" line-1") and stamped[0][:4].isdigit()


def test_logs_leave_reaping_to_the_child_watcher(
    cluster: FakeCluster, lk: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A `docker logs` that ended on its own is waited for, not killed: killing an exited child
    reaps it behind asyncio's watcher, which then logs "Unknown child process" and reports 255
    (about one request in six did before)."""
    manifest = job_manifest("reaped", ["sh", "-c", "echo one; echo two; sleep 60"])
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
    pod = pod_of(cluster, "reaped", "Running")["metadata"]["name"]
    cluster.wait_for(lambda: list(lk.log(pod)) == ["one\n", "two\n"])
    caplog.set_level("WARNING", logger="asyncio")
    for _ in range(30):
        assert list(lk.log(pod)) == ["one\n", "two\n"]
    assert not [r.getMessage() for r in caplog.records if "child process" in r.getMessage()]


def test_logs_before_the_container_started_is_a_400(cluster: FakeCluster, lk: Client) -> None:
    manifest = job_manifest("early", ["true"])
    manifest["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "wait", "image": BUSYBOX, "command": ["sleep", "30"]}
    ]
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
    pod = pod_of(cluster, "early")["metadata"]["name"]
    with pytest.raises(ApiError) as err:
        list(lk.log(pod, container="main"))
    assert err.value.status.code == 400
    assert "is waiting to start: PodInitializing" in (err.value.status.message or "")


def test_exec_stdin_roundtrip_and_exit_codes(cluster: FakeCluster, kctl: Kubectl, lk: Client) -> None:
    kctl.apply(job_manifest("exec", ["sleep", "60"]))
    pod = pod_of(cluster, "exec", "Running")["metadata"]["name"]
    data = bytes(range(256)) * 2048  # 512 KiB, every byte value
    via_kubectl = kctl.run("exec", "-i", pod, "--", "cat", stdin=data)
    assert via_kubectl.stdout == data
    via_lightkube = lk.exec(pod, command=["cat"], stdin=data, stdout=True, decode=None)
    assert via_lightkube.stdout == data and via_lightkube.exit_code == 0
    failing = kctl.run("exec", pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    seen = (failing.returncode, failing.stdout, b"err\n" in failing.stderr)
    assert seen == (3, b"out\n", True), failing
    result = lk.exec(pod, command=["sh", "-c", "echo err >&2; exit 3"], stdout=True, stderr=True)
    assert (result.exit_code, result.stderr) == (3, "err\n")
    missing = kctl.run("exec", pod, "--", "no-such-binary", check=False)
    assert missing.returncode != 0 and b"executable file not found" in missing.stderr
    assert [r.status for r in cluster.requests_for("create", "pods/exec")][:2] == [101, 101]


def test_kubectl_cp_tar_over_exec_both_ways(cluster: FakeCluster, kctl: Kubectl, tmp_path: Path) -> None:
    """kubectl cp is tar over pods/exec stdin/stdout: the reference for the builder's context upload."""
    source = tmp_path / "ctx"
    (source / "sub").mkdir(parents=True)
    (source / "Dockerfile").write_text("FROM scratch\n")
    (source / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)
    kctl.apply(job_manifest("cp", ["sleep", "60"]))
    pod = pod_of(cluster, "cp", "Running")["metadata"]["name"]
    kctl.run("cp", str(source), f"{pod}:/tmp/ctx")
    listing = kctl.run("exec", pod, "--", "sh", "-c", "cd /tmp/ctx && find . -type f | sort").stdout.decode()
    assert listing.split() == ["./Dockerfile", "./sub/data.bin"]
    kctl.run("cp", f"{pod}:/tmp/ctx/sub/data.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == (source / "sub" / "data.bin").read_bytes()


def test_exec_v4_stdin_needs_a_byte_count(cluster: FakeCluster, lk: Client) -> None:
    """A v4 client cannot close stdin: a command that reads a known byte count (``head -c N``)
    still ends; the exit status comes on channel 3."""
    import asyncio
    import ssl

    import aiohttp

    lk.create(Job.from_dict(job_manifest("v4", ["sleep", "60"])))  # type: ignore[no-untyped-call]
    pod = pod_of(cluster, "v4", "Running")["metadata"]["name"]
    assert cluster.ca_path is not None
    context = ssl.create_default_context(cafile=str(cluster.ca_path))
    payload = b"0123456789" * 10000

    async def run() -> tuple[str | None, dict[int, bytes]]:
        url = f"{cluster.url}/api/v1/namespaces/{cluster.namespace}/pods/{pod}/exec"
        script = f"head -c {len(payload)} | wc -c; exit 2"
        params = [("command", "sh"), ("command", "-c"), ("command", script), ("stdin", "true"), ("stdout", "true")]
        headers = {"Authorization": f"Bearer {cluster.token}"}
        channels: dict[int, bytes] = {}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url, params=params, headers=headers, protocols=("v4.channel.k8s.io",), ssl=context
            ) as ws,
        ):
            for start in range(0, len(payload), 32768):
                await ws.send_bytes(b"\x00" + payload[start : start + 32768])
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    channels[message.data[0]] = channels.get(message.data[0], b"") + message.data[1:]
            return ws.protocol, channels

    protocol, channels = asyncio.run(run())
    assert protocol == "v4.channel.k8s.io"
    assert channels[1].strip() == str(len(payload)).encode()
    status = json.loads(channels[3])
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0]["message"] == "2"


def test_pod_spec_is_honoured(cluster: FakeCluster, lk: Client) -> None:
    """Init container, emptyDir shared through exec upload, secret volume (read-only) and env,
    workingDir, args, securityContext capabilities, termination message."""
    lk.create(Secret.from_dict({"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}))  # type: ignore[no-untyped-call]
    manifest = job_manifest(
        "spec",
        ["sh", "-c"],
        initContainers=[
            {
                "name": "upload",
                "image": BUSYBOX,
                "command": ["sh", "-c", "until [ -f /work/.ready ]; do sleep 0.05; done"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            }
        ],
        volumes=[{"name": "work", "emptyDir": {}}, {"name": "creds", "secret": {"secretName": "creds"}}],
        container={
            "args": [
                "cat data.txt; cat /creds/token; echo; echo $TOKEN $(whoami); "
                "touch /creds/x 2>/dev/null || echo ro; grep CapEff /proc/self/status; "
                "printf done > /dev/termination-log"
            ],
            "workingDir": "/work",
            "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "creds", "mountPath": "/creds"}],
            "securityContext": {"capabilities": {"drop": ["ALL"]}},
        },
    )
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]

    def init_running() -> Obj | None:
        pod = pod_of(cluster, "spec")
        statuses = pod["status"].get("initContainerStatuses") or [{}]
        return pod if "running" in statuses[0].get("state", {}) else None

    pod = cluster.wait_for(init_running)["metadata"]["name"]
    assert cluster.get("pods", pod)["status"]["phase"] == "Pending"  # type: ignore[index]
    upload = lk.exec(
        pod, container="upload", command=["sh", "-c", "cat > /work/data.txt && touch /work/.ready"], stdin=b"context\n"
    )
    assert upload.exit_code == 0
    assert job_condition(cluster, "spec")["type"] == "Complete"
    lines = "".join(lk.log(pod)).splitlines()
    assert lines[:4] == ["context", "s3cret", "s3cret root", "ro"]
    assert lines[4].split() == ["CapEff:", "0000000000000000"]
    terminated = lk.get(Pod, pod).status.containerStatuses[0].state.terminated
    assert (terminated.exitCode, terminated.message) == (0, "done")


def test_privileged_container_can_mount(cluster: FakeCluster, lk: Client) -> None:
    """privileged: true runs here even where dockerd's --privileged cannot (stand-in: every
    capability the host has, unconfined seccomp/AppArmor, /dev/fuse) - what buildah needs."""
    script = "mkdir -p /m && mount -t tmpfs none /m && echo mounted; test -c /dev/fuse && echo fuse"
    manifest = job_manifest("priv", ["sh", "-c", script], container={"securityContext": {"privileged": True}})
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
    assert job_condition(cluster, "priv")["type"] == "Complete"
    pod = pod_of(cluster, "priv")["metadata"]["name"]
    assert "".join(lk.log(pod)).splitlines() == ["mounted", "fuse"]


def test_failed_container_reports_exit_code_reason_and_log_fallback(cluster: FakeCluster, kctl: Kubectl) -> None:
    manifest = job_manifest("fails", ["sh", "-c", "echo step 1; echo 'RUN failed: exit 3' >&2; exit 3"])
    manifest["spec"]["template"]["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    kctl.apply(manifest)
    condition = job_condition(cluster, "fails")
    assert (condition["type"], condition["reason"]) == ("Failed", "BackoffLimitExceeded")
    pod = kctl.json("get", "pods", "-l", "job-name=fails")["items"][0]
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    # Docker, like a real kubelet, keeps no order between stdout and stderr lines.
    assert sorted(terminated["message"].splitlines()) == ["RUN failed: exit 3", "step 1"]


def test_memory_limit_gives_oomkilled(cluster: FakeCluster, lk: Client) -> None:
    manifest = job_manifest(
        "oom",
        ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"],
        container={"resources": {"limits": {"memory": "16Mi"}, "requests": {"memory": "16Mi"}}},
    )
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
    assert job_condition(cluster, "oom")["type"] == "Failed"
    pod = pod_of(cluster, "oom", "Failed")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"
    assert pod["status"]["qosClass"] == "Burstable"


def test_active_deadline_fails_the_job_and_removes_its_pod(cluster: FakeCluster, lk: Client) -> None:
    manifest = job_manifest("deadline", ["sleep", "60"])
    manifest["spec"]["activeDeadlineSeconds"] = 2
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
    condition = job_condition(cluster, "deadline")
    assert (condition["type"], condition["reason"]) == ("Failed", "DeadlineExceeded")
    cluster.wait_for(lambda: not cluster.list("pods", label_selector="job-name=deadline"))
    assert cluster.containers() == []
    events = lk.list(Event, fields={"involvedObject.name": "deadline"})
    assert {"SuccessfulCreate", "DeadlineExceeded"} <= {e.reason for e in events}


def test_delete_job_with_and_without_propagation(cluster: FakeCluster, kctl: Kubectl, lk: Client) -> None:
    for name in ("orphaned", "background"):
        lk.create(Job.from_dict(job_manifest(name, ["sleep", "60"])))  # type: ignore[no-untyped-call]
    orphan = pod_of(cluster, "orphaned", "Running")["metadata"]["name"]
    pod_of(cluster, "background", "Running")
    lk.delete(Job, "orphaned")  # no policy: batch/v1 Jobs orphan their pods, as on a real server
    lk.delete(Job, "background", cascade=CascadeType.BACKGROUND)
    cluster.wait_for(lambda: not cluster.list("pods", label_selector="job-name=background"))
    assert lk.get(Pod, orphan).metadata.ownerReferences is None
    assert len(cluster.containers()) == 1
    kctl.run("delete", "pod", orphan, "--wait=true")
    assert cluster.containers() == []


def test_missing_image_waits_with_errimagepull_and_events(cluster: FakeCluster, kctl: Kubectl) -> None:
    manifest = job_manifest("noimage", ["true"])
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "rtbuild-test/no-such-image:1"
    kctl.apply(manifest)

    def backing_off() -> Obj | None:
        pod = pod_of(cluster, "noimage")
        state = (pod["status"].get("containerStatuses") or [{}])[0].get("state", {})
        return pod if state.get("waiting", {}).get("reason") == "ImagePullBackOff" else None

    pod = cluster.wait_for(backing_off)
    assert pod["status"]["phase"] == "Pending"
    events = kctl.json("get", "events", "--field-selector", f"involvedObject.name={pod['metadata']['name']}")
    reasons = {e["reason"] for e in events["items"]}
    assert {"Scheduled", "Failed", "BackOff"} <= reasons
    assert any("ErrImagePull" in e["message"] for e in events["items"])


def test_unmatched_arch_is_unschedulable(cluster: FakeCluster, lk: Client) -> None:
    manifest = job_manifest("arm", ["true"], nodeSelector={"kubernetes.io/arch": "arm64"})
    lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]

    def unschedulable() -> Obj | None:
        pod = pod_of(cluster, "arm")
        return next((c for c in pod["status"].get("conditions") or [] if c.get("reason") == "Unschedulable"), None)

    condition = cluster.wait_for(unschedulable)
    assert "didn't match Pod's node affinity/selector" in condition["message"]
    events = list(lk.list(Event, fields={"reason": "FailedScheduling"}))
    assert events and events[0].message == condition["message"]


def test_extra_arch_node_takes_that_arch(docker_engine: str, kubectl: str, tmp_path: Path) -> None:
    """With extra_archs, a nodeSelector for arm64 schedules (the container still runs on this host)."""
    with FakeCluster(workdir=tmp_path / "arm", extra_archs=("arm64",)) as arm:
        env = {"KUBECONFIG": str(arm.kubeconfig_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
        nodes = Kubectl(kubectl, env, tmp_path).json("get", "nodes")["items"]
        assert sorted(n["metadata"]["labels"]["kubernetes.io/arch"] for n in nodes) == ["amd64", "arm64"]
        client = Client(KubeConfig.from_file(str(arm.kubeconfig_path)), namespace=arm.namespace)
        manifest = job_manifest("arm", ["true"], nodeSelector={"kubernetes.io/arch": "arm64"})
        client.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
        assert job_condition(arm, "arm")["type"] == "Complete"
        assert pod_of(arm, "arm")["spec"]["nodeName"] == "rtbuild-fake-node-arm64"


def test_job_validation_rejects_restart_policy_always(cluster: FakeCluster, lk: Client) -> None:
    manifest = job_manifest("always", ["true"])
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiError) as err:
        lk.create(Job.from_dict(manifest))  # type: ignore[no-untyped-call]
    assert err.value.status.code == 422 and "restartPolicy" in (err.value.status.message or "")


# -- fault switches ----------------------------------------------------------------------------
def test_fault_429_is_retried_by_kubectl_after_retry_after(cluster: FakeCluster, kctl: Kubectl) -> None:
    cluster.faults.fail_next(2, status=429, verb="list", resource="pods", retry_after=1)
    kctl.run("get", "pods")
    statuses = [r.status for r in cluster.requests_for("list", "pods")]
    assert statuses == [429, 429, 200]


def test_fault_500_reaches_lightkube_once(cluster: FakeCluster, lk: Client) -> None:
    cluster.faults.fail_next(1, status=500, verb="list", resource="jobs", retry_after=None)
    with pytest.raises(ApiError) as err:
        list(lk.list(Job))
    assert err.value.status.code == 500 and err.value.status.reason == "InternalError"
    assert list(lk.list(Job)) == []


def test_fault_lost_answer_creates_but_never_answers(cluster: FakeCluster, kctl: Kubectl, lk: Client) -> None:
    cluster.faults.lose_next_answer("create", "jobs")
    with pytest.raises(httpx2.HTTPError):
        lk.create(Job.from_dict(job_manifest("lost-answer", ["sleep", "30"])))
    # It happened all the same: both clients see the Job, and creating it again is a 409.
    assert lk.get(Job, "lost-answer").metadata.name == "lost-answer"
    assert b"lost-answer" in kctl.run("get", "jobs", "-o", "name").stdout
    with pytest.raises(ApiError) as err:
        lk.create(Job.from_dict(job_manifest("lost-answer", ["sleep", "30"])))
    assert err.value.status.code == 409


def test_fault_exec_forbidden_names_verb_and_resource(cluster: FakeCluster, kctl: Kubectl, lk: Client) -> None:
    lk.create(Job.from_dict(job_manifest("forbid", ["sleep", "60"])))  # type: ignore[no-untyped-call]
    pod = pod_of(cluster, "forbid", "Running")["metadata"]["name"]
    cluster.faults.forbid("create", "pods/exec")
    refused = kctl.run("exec", pod, "--", "true", check=False)
    assert refused.returncode != 0
    assert b'cannot create resource "pods/exec" in API group ""' in refused.stderr
    # lightkube does not turn a refused websocket upgrade into an ApiError, and the body is gone
    # by then: the builder only sees the 403 status code.
    with pytest.raises(WebSocketUpgradeError) as err:
        lk.exec(pod, command=["true"])
    assert err.value.response.status_code == 403
    assert [r.status for r in cluster.requests_for("create", "pods/exec")][-1] == 403


def test_fault_unauthorized(cluster: FakeCluster, kctl: Kubectl, lk: Client, tmp_path: Path) -> None:
    wrong = cluster.write_kubeconfig(tmp_path / "wrong", token="not-the-token")
    refused = kctl.run("--kubeconfig", str(wrong), "get", "pods", check=False)
    assert refused.returncode != 0 and b"You must be logged in to the server" in refused.stderr
    cluster.faults.unauthorized = True
    with pytest.raises(ApiError) as err:
        lk.get(Job, "anything")
    assert err.value.status.code == 401


def test_fault_watch_dropped_lightkube_resumes_from_last_version(cluster: FakeCluster, lk: Client) -> None:
    cluster.faults.drop_next_watch(after_events=1)
    lk.create(Secret.from_dict({"metadata": {"name": "a"}, "stringData": {"k": "v"}}))  # type: ignore[no-untyped-call]
    seen: list[tuple[str, str]] = []
    for kind, obj in lk.watch(Secret, namespace=cluster.namespace):
        seen.append((kind, obj.metadata.name))
        if len(seen) == 1:
            lk.create(Secret.from_dict({"metadata": {"name": "b"}, "stringData": {"k": "v"}}))  # type: ignore[no-untyped-call]
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "a"), ("ADDED", "b")]
    watches = cluster.requests_for("watch", "secrets")
    assert len(watches) == 2  # dropped after one event, re-opened from that event's resourceVersion
    assert watches[1].query.get("resourceVersion") == cluster.get("secrets", "a")["metadata"]["resourceVersion"]  # type: ignore[index]


def test_fault_watch_abrupt_drop_and_410(cluster: FakeCluster, lk: Client) -> None:
    import threading

    errors: list[BaseException] = []

    def watch() -> None:
        try:
            for _ in lk.watch(Secret, namespace=cluster.namespace):
                pass
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    cluster.wait_for(lambda: cluster.requests_for("watch", "secrets"))
    cluster.wait_for(lambda: cluster.faults.drop_watches(abrupt=True))
    thread.join(10)
    assert errors and isinstance(errors[0], httpx2.HTTPError)
    old = str(int(cluster.get("namespaces", "default")["metadata"]["resourceVersion"]))  # type: ignore[index]
    cluster.faults.expire_watch_history()
    gone = list(lk.watch(Secret, namespace=cluster.namespace, resource_version=old, on_error=_stop))
    assert gone == [] and _stop.last is not None and _stop.last.status.code == 410  # type: ignore[attr-defined]


def _stop(exc: BaseException, count: int) -> Any:
    from lightkube.core.exceptions import ApiError as LkApiError
    from lightkube.types import OnErrorAction, OnErrorResult

    _stop.last = exc if isinstance(exc, LkApiError) else None  # type: ignore[attr-defined]
    return OnErrorResult(OnErrorAction.STOP)


def test_fault_exec_connection_reset_mid_upload(cluster: FakeCluster, lk: Client) -> None:
    lk.create(Job.from_dict(job_manifest("cut", ["sleep", "60"])))  # type: ignore[no-untyped-call]
    pod = pod_of(cluster, "cut", "Running")["metadata"]["name"]
    cluster.faults.break_next_exec(after_stdin_bytes=300_000)
    # lightkube surfaces the reset as httpx-ws's own error (not an httpx.HTTPError); when
    # httpx-ws's reader sees the reset first it starts closing, and lightkube's closing
    # CLOSE_STDIN frame then fails in wsproto instead (seen once in a fresh-clone CI run).
    with pytest.raises((WebSocketNetworkError, WebSocketDisconnect, LocalProtocolError)):
        lk.exec(pod, command=["sh", "-c", "cat > /tmp/upload"], stdin=b"x" * 1_000_000)
    received = lk.exec(pod, command=["sh", "-c", "cat /tmp/upload 2>/dev/null | wc -c"], stdout=True).stdout
    assert int(received.strip()) < 1_000_000  # the rest never arrived


def test_fault_log_stream_dropped_while_running(cluster: FakeCluster, lk: Client) -> None:
    script = "echo first; sleep 60"
    lk.create(Job.from_dict(job_manifest("logcut", ["sh", "-c", script])))  # type: ignore[no-untyped-call]
    pod = pod_of(cluster, "logcut", "Running")["metadata"]["name"]
    cluster.wait_for(lambda: "".join(lk.log(pod)) == "first\n")
    cluster.faults.drop_next_log(after_bytes=3)
    assert list(lk.log(pod, follow=True)) == ["fir\n"]  # ended early (lightkube adds the newline)
    assert cluster.get("pods", pod)["status"]["phase"] == "Running"  # type: ignore[index]


def test_fault_evict_fails_the_job(cluster: FakeCluster, kctl: Kubectl, lk: Client) -> None:
    lk.create(Job.from_dict(job_manifest("evict", ["sleep", "60"])))  # type: ignore[no-untyped-call]
    pod = pod_of(cluster, "evict", "Running")["metadata"]["name"]
    cluster.faults.evict(pod)
    seen = kctl.json("get", "pod", pod)["status"]
    assert (seen["phase"], seen["reason"]) == ("Failed", "Evicted")
    condition = job_condition(cluster, "evict")
    assert (condition["type"], condition["reason"]) == ("Failed", "BackoffLimitExceeded")


def test_stop_removes_every_container(docker_engine: str, tmp_path: Path) -> None:
    from fake_cluster import CONTAINER_LABEL

    with FakeCluster(workdir=tmp_path / "own") as own:
        client = Client(KubeConfig.from_file(str(own.kubeconfig_path)), namespace=own.namespace)
        client.create(Job.from_dict(job_manifest("lingers", ["sleep", "60"])))  # type: ignore[no-untyped-call]
        own.wait_for(lambda: [p for p in own.list("pods") if p["status"].get("phase") == "Running"])
        label = f"{CONTAINER_LABEL}={own.id}"
        assert own.containers()
    left = subprocess.run(
        [docker_engine, "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, check=True
    )
    assert left.stdout.strip() == ""
    assert not (tmp_path / "own").exists()
