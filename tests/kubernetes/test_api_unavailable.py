"""An API server that answered before answers 503 for a while (restarting behind a load
balancer, a control-plane upgrade), or 429 (API Priority and Fairness under load). A refused
connection was waited for, up to 60 s per call; a 503 or 429 was asked again 4 times, a second
apart, and then failed a build whose Job went on to push: a 10 s window killed a build of any
length."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from _kbuilder_support import RTBUILD, Site, step_image_tag, write_config

pytestmark = [pytest.mark.engine]

WINDOW_S = 10.0


def _build_running(cluster: Any) -> bool:
    for pod in cluster.list("pods", namespace=cluster.namespace):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == "build" and "running" in (status.get("state") or {}):
                return True
    return False


def test_kubectl_rides_out_a_short_503_window(cluster: Any, kubectl: str, kube_env: dict[str, str]) -> None:
    """The reference client: client-go asks again after each Retry-After."""
    cluster.faults.unavailable(3.0)
    listed = subprocess.run(
        [kubectl, "get", "pods", "-n", cluster.namespace, "-o", "name"],
        env=kube_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    statuses = [r.status for r in cluster.requests_for("list", "pods")]
    assert statuses[-1] == 200 and 503 in statuses, statuses


@pytest.mark.parametrize("status", [503, 429])
def test_a_build_rides_out_a_window_of_refusals(site: Site, cluster: Any, status: int) -> None:
    """503: a restart behind a load balancer; 429: API Priority and Fairness rejecting every
    request of a saturated priority level (client-go asks again after each Retry-After)."""
    config = write_config(site.root / "rtbuild.toml", cluster.kubeconfig_path, step_image=step_image_tag())
    context = site.context("unavailable", "FROM BASE\nRUN sleep 15 && echo after-the-window > /w.txt\n")
    tag = f"{site.registry}/team/unavailable:1"
    proc = subprocess.Popen(
        [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", tag],
        cwd=site.root, env=site.env(RTBUILD_CONFIG=str(config)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        cluster.wait_for(lambda: _build_running(cluster) or proc.poll() is not None, timeout=180)
        assert proc.poll() is None, proc.communicate()
        cluster.faults.unavailable(WINDOW_S, status)
        cluster.faults.drop_watches()  # the builder's next calls fall in the window
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-4000:]
    assert stdout.strip().startswith(tag), stdout
    refused = [r for r in cluster.requests if r.status == status and "kubectl" not in r.user_agent]
    assert len(refused) > 5, [(r.verb, r.resource) for r in refused]  # more than the 4 retries of one call


def test_the_context_upload_rides_out_the_same_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pods/exec websocket upgrade answered 503 more often than the 4 retries of a
    throttled call: asked again for as long as any other call would wait."""
    import io
    import json as json_

    import httpx2
    import lightkube.core.websocket
    from httpx2.websockets import WebSocketUpgradeError
    from rtbuild_kubernetes.client import RETRIES, V5, LightkubeClient

    refusals = RETRIES + 3
    attempts: list[int] = []

    class Socket:
        subprotocol = V5
        received = b""

        def __enter__(self) -> Socket:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def send_bytes(self, data: bytes) -> None:
            self.received += data

        def receive_bytes(self, timeout: float) -> bytes:
            return b"\x03" + json_.dumps({"status": "Success"}).encode()

    def connect_ws(url: str, client: object, subprotocols: list[str], params: dict[str, object]) -> Socket:
        attempts.append(1)
        if len(attempts) <= refusals:
            raise WebSocketUpgradeError(httpx2.Response(503, headers={"Retry-After": "0"}))
        return Socket()

    class Generic:
        _client = None

        def prepare_request(self, *args: object, **kwargs: object) -> Any:
            return type("Request", (), {"url": "https://k/exec", "params": {}})()

    monkeypatch.setattr(lightkube.core.websocket, "connect_ws", connect_ws)
    client = object.__new__(LightkubeClient)
    client.namespace = "builds"
    client._client = type("Client", (), {"_client": Generic()})()
    assert client.exec_stdin("pod", "context", ["sh"], io.BytesIO(b"tar"), 3) == 0
    assert len(attempts) == refusals + 1


def test_ctrl_c_during_an_outage_does_not_wait_it_out(site: Site, cluster: Any) -> None:
    """Ctrl-C while the API server answers 503: the clean-up makes one attempt per object and
    says what is left (and the kubectl command that removes it). It waited out the outage again
    for the Job and for the Secret, asking every second, up to 60 s each."""
    import signal

    config = write_config(site.root / "rtbuild.toml", cluster.kubeconfig_path, step_image=step_image_tag())
    context = site.context("interrupted", "FROM BASE\nRUN sleep 300\n")
    tag = f"{site.registry}/team/interrupted:1"
    proc = subprocess.Popen(
        [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", tag],
        cwd=site.root, env=site.env(RTBUILD_CONFIG=str(config)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        cluster.wait_for(lambda: _build_running(cluster) or proc.poll() is not None, timeout=180)
        assert proc.poll() is None, proc.communicate()
        cluster.faults.unavailable(600.0)
        cluster.faults.drop_watches()
        cluster.wait_for(lambda: any(r.status == 503 for r in cluster.requests), timeout=60)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        cluster.faults.clear()
    assert proc.returncode == 130, stderr[-4000:]
    assert "could not delete everything" in stderr and "kubectl delete job,secret -l" in stderr, stderr[-4000:]
    deletes = cluster.requests_for("delete")
    assert 1 <= len(deletes) <= 4, [(r.resource, r.status) for r in deletes]
