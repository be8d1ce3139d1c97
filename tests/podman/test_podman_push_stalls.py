"""A push whose registry stalls is bounded: a ``PushError``, and no ``podman push`` left running.

The registry (a loopback stub, tests/_stall_registry.py) answers ``/v2/`` and then takes
none of the upload's data, takes it at a trickle, or never answers the upload at all.
rtbuild must stop podman (no progress for ``push_stall_timeout``, or ``push_timeout`` in
all; both set small here) and raise the push's typed error.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _podman_support import podman, processes_naming, write_context
from _stall_registry import StallRegistry, bounded
from rtbuild import PushError
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))
#: Random, so compression does not shrink it: at the stub's 1 MiB/s the upload would take
#: most of a minute, and it outlasts the socket buffers.
_LAYER_BYTES = 48 * 1024 * 1024


@pytest.fixture
def stub_registry(request: pytest.FixtureRequest, podman_cli: str) -> Iterator[StallRegistry]:
    stub = StallRegistry("manifest", uploads=request.param)
    yield stub
    stub.close()
    for pid in _pushes_to(stub):  # a push the test failed to see stopped: not left behind
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def big_image(stub_registry: StallRegistry) -> Iterator[str]:
    """A one-layer image of random data in podman's storage, named for the stub registry."""
    image = f"{stub_registry.host}/rt-podman-test/push-stall:{uuid.uuid4().hex[:10]}"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("blob")
        info.size = _LAYER_BYTES
        tar.addfile(info, io.BytesIO(os.urandom(_LAYER_BYTES)))
    subprocess.run(["podman", "import", "-", image], input=raw.getvalue(), capture_output=True, check=True)
    yield image
    podman("rmi", "-f", image, check=False)


def _pushes_to(stub: StallRegistry) -> list[int]:
    """Running ``podman push`` processes to the stub (their argv names ``docker://HOST/...``)."""
    return processes_naming(f"docker://{stub.host}/")


@pytest.mark.parametrize("stub_registry", ["stall"], indirect=True)
def test_a_stalled_push_is_stopped(stub_registry: StallRegistry, big_image: str, tmp_path: Path) -> None:
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"), push_stall_timeout=3, push_timeout=600)
    started = time.monotonic()
    error = bounded(lambda: builder.push(big_image), within=60, action="push")
    assert isinstance(error, PushError), error
    expected = f"pushing {big_image} to {stub_registry.host} stalled: no progress for 3 s; podman was stopped"
    assert error.message == expected
    assert error.step == "push"
    assert error.hint and stub_registry.host in error.hint and "push_stall_timeout" in error.hint
    assert any("Copying blob" in line for line in error.log_tail)
    assert time.monotonic() - started < 30
    assert stub_registry.blob_requests >= 1  # podman was really uploading
    assert not _pushes_to(stub_registry), "the stalled podman push was left running"


@pytest.mark.parametrize("stub_registry", ["drip"], indirect=True)
def test_a_dripping_push_hits_the_overall_bound(stub_registry: StallRegistry, big_image: str, tmp_path: Path) -> None:
    # Data keeps flowing (so the stall bound must not fire) but never all of it.
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"), push_stall_timeout=4, push_timeout=10)
    started = time.monotonic()
    error = bounded(lambda: builder.push(big_image), within=60, action="push")
    assert isinstance(error, PushError), error
    assert "did not finish within 10 s; podman was stopped" in error.message
    assert time.monotonic() - started < 25
    assert not _pushes_to(stub_registry), "the podman push was left running"


@pytest.mark.parametrize("stub_registry", ["unanswered"], indirect=True)
def test_cli_build_push_to_a_registry_that_never_answers_the_upload(
    stub_registry: StallRegistry, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /rt.txt\n")
    (tmp_path / "rtbuild.toml").write_text("[builders.podman]\npush_stall_timeout = 3\n")
    image = f"{stub_registry.host}/rt-podman-test/push-unanswered:{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")}
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text("{}")  # no credentials: an anonymous push
    env["DOCKER_CONFIG"] = str(tmp_path / "docker")
    try:
        # Before the fix this never returned: the timeout makes that a failure.
        proc = subprocess.run(
            [RTBUILD, "build", str(context), "-t", image, "--push", "--builder", "podman"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        podman("rmi", "-f", image, check=False)
    assert proc.returncode == 1, proc.stderr
    assert stub_registry.blob_requests >= 1  # podman had started the upload
    assert f"error: pushing {image} to {stub_registry.host} stalled: no progress for 3 s" in proc.stderr
    assert "  step: push\n" in proc.stderr
    assert "  from: builder podman" in proc.stderr
    assert "  hint: check that the registry" in proc.stderr
    assert proc.stdout == ""
    assert not _pushes_to(stub_registry), "the podman push outlived rtbuild"


def _left_in(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize("stub_registry", ["stall"], indirect=True)
def test_a_stopped_push_leaves_no_layer_copy_in_tmpdir(
    stub_registry: StallRegistry, big_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """containers/image copies each layer a push sends into a temp file under $TMPDIR (else
    /var/tmp) and never removes it when podman is stopped: before the fix each stalled,
    timed-out or interrupted push left the layer's size (48 MiB here) behind for ever. A
    push killed with rtbuild (kill -9) leaves its TMPDIR, which the next push removes."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"), push_stall_timeout=3, push_timeout=600)
    error = bounded(lambda: builder.push(big_image), within=60, action="push")
    assert isinstance(error, PushError), error
    assert _left_in(tmp) == []

    # kill -9 of rtbuild mid-upload: podman dies with it, the copy stays until the next push.
    script = (
        "import sys; from rtbuild_podman import PodmanBuilder;"
        f" PodmanBuilder(log_dir={str(tmp_path / 'logs')!r}, push_stall_timeout=600).push(sys.argv[1])"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, big_image], env={**os.environ, "TMPDIR": str(tmp)})
    try:
        deadline = time.monotonic() + 60
        while not any(p.is_file() and p.stat().st_size >= _LAYER_BYTES for p in tmp.rglob("*")):
            assert time.monotonic() < deadline and proc.poll() is None, _left_in(tmp)
            time.sleep(0.2)
        time.sleep(1)  # the upload has started
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while _pushes_to(stub_registry) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _pushes_to(stub_registry), "podman push outlived rtbuild"
    assert _left_in(tmp), "the killed push left nothing to sweep: the test proves nothing"
    from rtbuild import Reporter
    from rtbuild._framework.progress import use_reporter

    events: list[dict[str, object]] = []

    class Recorder(Reporter):
        def event(self, kind: str, **fields: object) -> None:
            events.append({"event": kind, **fields})

    def push_recorded() -> None:
        with use_reporter(Recorder()):  # in bounded()'s thread: a reporter is per context
            builder.push(big_image)

    error = bounded(push_recorded, within=60, action="push")
    assert isinstance(error, PushError), error
    assert _left_in(tmp) == []
    # The sweep says what it removed: a push's layer copies, not a "killed podman build".
    swept = [str(e["message"]) for e in events if e["event"] == "leftovers_removed"]
    assert len(swept) == 1 and "1 killed podman pull(s) or push(es) (layer copies)" in swept[0], swept
    assert "build(s)" not in swept[0], swept
