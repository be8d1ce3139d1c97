"""A multi-platform build that fails (or is interrupted) after one platform pushed its
temporary tag leaves no ``rtbuild-`` tag in the registry.

Nothing is stubbed: the fake cluster has an arm64 node beside the host's (its pods run on this
host), the real buildah step image builds ``FROM`` a two-platform base in Debian's
docker-registry, and the arm64 ``RUN`` runs arm64 busybox under QEMU (binfmt_misc). That arm64
step waits at a gate (a loopback HTTP server; the pods use the host network) which the test
opens only once it has seen amd64's temporary tag in the registry's tags/list; the step then
exits 3. So the failure comes from the real step, and it is certain to come after the push.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _kbuilder_support import DOCKER, RTBUILD, Site, step_image_tag, write_config
from fake_cluster import FakeCluster

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow, pytest.mark.timeout(600)]
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
BASES = {"amd64": "rtbuild/busybox:amd64", "arm64": "rtbuild/busybox:arm64"}  # scripts/podman.sh
# Each platform's RUN waits at its gate (at most 120 s); then arm64 fails, amd64 builds. nc,
# not wget: busybox's wget dies of SIGSEGV under qemu-user here, its nc works.
DOCKERFILE = """FROM BASE
RUN gate() { i=0; until printf 'GET / HTTP/1.0\\n\\n' | nc -w 2 127.0.0.1 $1 | grep -q ' 200 ' || [ $i -ge 240 ]; \\
      do i=$((i+1)); sleep 0.5; done; }; \\
    if [ "$(uname -m)" = aarch64 ]; then gate ARM64_GATE; echo "arm64 step fails now"; exit 3; fi; \\
    gate AMD64_GATE; echo built > /built.txt
"""


class Gate:
    """A loopback HTTP server answering 503 until :meth:`open`, then 200."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.asked = 0  # requests: the step waits here
        self.passed = 0  # requests answered 200: the step went through the open gate
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.asked += 1
                gate.passed += gate.opened.is_set()
                self.send_response(200 if gate.opened.is_set() else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def open(self) -> None:
        self.opened.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def two_arch(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    with FakeCluster(workdir=tmp_path_factory.mktemp("failed-platform"), extra_archs=("arm64",)) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def two_arch_base(k8s_site: Site, auth_registry: Any) -> str:
    """``REGISTRY/rtbuild-test/busybox-two-arch:latest``: a manifest list of the amd64 and the
    arm64 busybox, each pushed by docker, the list put through the registry API."""
    missing = [image for image in BASES.values() if _docker("image", "inspect", image).returncode != 0]
    if missing:
        message = f"docker has no {', '.join(missing)} (run scripts/podman.sh as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    repo = f"{k8s_site.registry}/rtbuild-test/busybox-two-arch"
    auth = (auth_registry.username, auth_registry.password)
    entries = []
    for arch, local in BASES.items():
        assert _docker("tag", local, f"{repo}:{arch}").returncode == 0
        pushed = _docker("--config", str(k8s_site.docker_config), "push", f"{repo}:{arch}")
        _docker("rmi", f"{repo}:{arch}")  # the local tag would outlive the session's registry
        assert pushed.returncode == 0, pushed.stderr
        url = f"http://{k8s_site.registry}/v2/rtbuild-test/busybox-two-arch/manifests/{arch}"
        got = httpx.get(url, headers={"Accept": DOCKER_MANIFEST}, auth=auth)
        assert got.status_code == 200 and got.headers["Content-Type"] == DOCKER_MANIFEST, got.text
        platform = {"os": "linux", "architecture": arch}
        entries.append(
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": got.headers["Docker-Content-Digest"],
                "size": len(got.content),
                "platform": platform,
            }
        )
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}).encode()
    url = f"http://{k8s_site.registry}/v2/rtbuild-test/busybox-two-arch/manifests/latest"
    put = httpx.put(url, content=body, headers={"Content-Type": DOCKER_LIST}, auth=auth)
    assert put.status_code == 201, put.text
    return f"{repo}:latest"


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=300)


def _tags(site: Site, registry: Any, repo: str) -> list[str]:
    listed = httpx.get(
        f"http://{site.registry}/v2/{repo}/tags/list", auth=(registry.username, registry.password), timeout=10
    )
    if listed.status_code == 404:  # nothing pushed to the repository yet
        return []
    assert listed.status_code == 200, listed.text
    return sorted(listed.json().get("tags") or [])


def _start(
    site: Site, cluster: FakeCluster, base: str, gates: tuple[Gate, Gate], repo: str, **settings: object
) -> subprocess.Popen[str]:
    config = write_config(
        site.root / "rtbuild.toml",
        Path(cluster.kubeconfig_path),
        step_image=step_image_tag(),
        skip_unchanged=False,
        **settings,
    )
    arm64, amd64 = gates
    dockerfile = DOCKERFILE.replace("BASE", base).replace("ARM64_GATE", str(arm64.port))
    context = site.context("ctx", dockerfile.replace("AMD64_GATE", str(amd64.port)))
    args = [RTBUILD, "build", str(context), "--builder", "kubernetes", "-t", f"{site.registry}/{repo}:1"]
    args += ["--platform", "linux/amd64,linux/arm64"]
    env = site.env(RTBUILD_CONFIG=str(config))
    return subprocess.Popen(args, cwd=site.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stopped(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
    return proc.communicate()[1]


def _arm64_failure(proc: subprocess.Popen[str], stderr: str) -> None:
    assert proc.returncode == 1, stderr[-4000:]  # the build failed (docs/cli.md)
    assert "exit code 3" in stderr and "-arm64-" in stderr, stderr[-4000:]  # names arm64's pod and step
    assert "arm64 step fails now" in stderr, stderr[-4000:]  # the real step's log tail


def _pods_done(cluster: FakeCluster) -> bool:
    """No pod of the build runs any more: every one is gone, or Succeeded (a platform whose Job had
    already succeeded keeps it, and its pod, until ttlSecondsAfterFinished)."""

    def done(job: dict[str, Any]) -> bool:
        return any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"].get("conditions") or [])

    return all(done(job) for job in cluster.list("jobs", namespace=cluster.namespace)) and all(
        pod["status"].get("phase") == "Succeeded" for pod in cluster.list("pods", namespace=cluster.namespace)
    )


def _no_pods(cluster: FakeCluster) -> None:
    cluster.wait_for(lambda: _pods_done(cluster), timeout=120)


@pytest.mark.parametrize("how", ["arm64-fails", "ctrl-c"])
def test_the_tag_amd64_pushed_is_removed_when_arm64_fails_or_on_ctrl_c(
    site: Site, auth_registry: Any, two_arch: FakeCluster, two_arch_base: str, how: str
) -> None:
    arm64, amd64 = Gate(), Gate()
    amd64.open()
    repo = f"team/failed-{how}"
    started = time.monotonic()
    proc = _start(site, two_arch, two_arch_base, (arm64, amd64), repo)
    try:
        # amd64's Job pushes its temporary tag while arm64's step waits at its gate.
        pushed: list[str] = []

        def amd64_pushed() -> bool:
            pushed[:] = [t for t in _tags(site, auth_registry, repo) if t.startswith("rtbuild-")]
            return pushed != [] or proc.poll() is not None

        two_arch.wait_for(amd64_pushed, timeout=300)
        assert proc.poll() is None, _stopped(proc)[-4000:]
        assert len(pushed) == 1 and pushed[0].endswith("-linux-amd64"), pushed
        seen = time.monotonic() - started
        stopped_at = time.monotonic()
        if how == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        else:
            arm64.open()
        _, stderr = proc.communicate(timeout=240)
        took = time.monotonic() - stopped_at
        print(f"{how}: amd64 tag {pushed[0]} seen after {seen:.1f}s; rtbuild ended {took:.1f}s later")
    finally:
        if proc.poll() is None:
            _stopped(proc)
        arm64.close()
        amd64.close()
    if how == "ctrl-c":
        assert proc.returncode == 130, stderr[-4000:]  # 128 + SIGINT (docs/cli.md)
        assert took < 20, f"rtbuild took {took:.1f}s to stop after Ctrl-C"
    else:
        _arm64_failure(proc, stderr)
        assert arm64.passed >= 1  # it failed because its gate opened, after amd64's push
    # The temporary tag amd64 pushed is gone; nothing else was ever tagged.
    assert _tags(site, auth_registry, repo) == [], stderr[-4000:]
    assert "temporary per-platform tag" not in stderr
    _no_pods(two_arch)
    assert _tags(site, auth_registry, repo) == []


def test_a_cancelled_platform_that_pushes_after_the_failure_has_its_tag_removed_too(
    site: Site, auth_registry: Any, two_arch: FakeCluster, two_arch_base: str
) -> None:
    """The ordering: arm64 fails while amd64's RUN still waits. rtbuild deletes amd64's Job, but
    its pod ignores SIGTERM (PID 1 is the step's sh, as on a real node) and, its gate opened
    then, pushes within its grace period: rtbuild must wait for that pod to stop before it
    removes the tags, or the tag comes back after the removal."""
    arm64, amd64 = Gate(), Gate()
    repo = "team/failed-late-push"
    proc = _start(site, two_arch, two_arch_base, (arm64, amd64), repo, termination_grace_period_seconds=60)
    seen: dict[str, float] = {}
    try:
        two_arch.wait_for(lambda: (arm64.asked and amd64.asked) or proc.poll() is not None, timeout=300)
        assert proc.poll() is None, _stopped(proc)[-4000:]
        arm64.open()

        def amd64_cancelled() -> bool:
            pods = two_arch.list("pods", namespace=two_arch.namespace)
            deleting = [
                p for p in pods if "-amd64-" in p["metadata"]["name"] and p["metadata"].get("deletionTimestamp")
            ]
            return deleting != [] or proc.poll() is not None

        two_arch.wait_for(amd64_cancelled, timeout=120)
        amd64.open()  # the cancelled pod's RUN ends now; buildah commits and pushes
        opened = time.monotonic()
        took = 0.0
        # Watched until amd64's pod is gone too: a push after rtbuild's exit must be seen.
        while time.monotonic() - opened < 240:
            for tag in _tags(site, auth_registry, repo):
                seen.setdefault(tag, time.monotonic() - opened)
            if proc.poll() is None:
                took = time.monotonic() - opened
            elif _pods_done(two_arch):  # (a Succeeded pod is kept to its Job's TTL)
                break
            time.sleep(0.05)
        stderr = _stopped(proc)
    finally:
        if proc.poll() is None:
            _stopped(proc)
        arm64.close()
        amd64.close()
    print(f"late push: tags seen {seen} (s after amd64's gate opened); rtbuild ended after {took:.1f}s")
    _arm64_failure(proc, stderr)
    assert amd64.passed >= 1, "amd64's step never went on after the cancel"
    assert [tag for tag in seen if tag.endswith("-linux-amd64")], f"amd64 never pushed: {stderr[-3000:]}"
    _no_pods(two_arch)  # amd64's pod is gone: nothing can push any more
    assert _tags(site, auth_registry, repo) == [], stderr[-4000:]
    assert "temporary per-platform tag" not in stderr
