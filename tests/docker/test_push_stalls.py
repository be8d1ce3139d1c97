"""A push whose registry stalls is bounded: a ``PushError``, and the engine's push is cancelled.

The registry (a loopback stub, tests/_stall_registry.py) answers ``/v2/`` and then never
answers the blob upload, takes none of its data, or takes it at a trickle. rtbuild must give
up (no progress for ``push_stall_timeout``, or ``push_timeout`` in all, both set small
here) and close the push stream so that the engine cancels the push: seen at the stub,
whose upload connection the engine then closes.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _registry_support import DOCKER, random_layer_image, run_cli
from _stall_registry import StallRegistry, bounded
from rtbuild.errors import PushError
from rtbuild_docker.builder import DockerBuilder

pytestmark = [pytest.mark.engine, pytest.mark.registry]

#: Random, so neither gzip nor the engine's layer cache shortens the upload: at the stub's
#: 1 MiB/s it would take most of a minute, and it outlasts the socket buffers.
_LAYER_BYTES = 48 * 1024 * 1024


@pytest.fixture
def stub_registry(request: pytest.FixtureRequest, docker_engine: str) -> Iterator[StallRegistry]:
    stub = StallRegistry("manifest", uploads=request.param)
    yield stub
    stub.close()


@pytest.fixture
def big_image(stub_registry: StallRegistry) -> Iterator[str]:
    """A one-layer image of random data, named for the stub registry."""
    with random_layer_image(f"{stub_registry.host}/rt-test/push-stall:{uuid.uuid4().hex[:10]}", _LAYER_BYTES) as image:
        yield image


def _engine_let_go(stub: StallRegistry) -> bool:
    """Whether the engine closed its upload once the stub takes the data again: a cancelled
    push closes the connection; one still running sends the rest and waits for an answer."""
    stub.resume()
    return stub.blob_closed.wait(20)


@pytest.mark.parametrize("stub_registry", ["stall"], indirect=True)
def test_a_stalled_push_is_stopped_in_the_engine(
    stub_registry: StallRegistry, big_image: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # In this process (a service's case: nothing ends with the process), the push must
    # still end in the engine once rtbuild gives up.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    builder = DockerBuilder(push_stall_timeout=3, push_timeout=600)
    started = time.monotonic()
    error = bounded(lambda: builder.push(big_image), within=60, action="push")
    assert isinstance(error, PushError), error
    expected = f"pushing {big_image} to {stub_registry.host} stalled: no progress for 3 s; the push was stopped"
    assert error.message == expected
    assert error.step == "push"
    assert error.hint and stub_registry.host in error.hint and "push_stall_timeout" in error.hint
    assert error.log_tail  # what the engine said before it stalled
    assert time.monotonic() - started < 30
    assert stub_registry.blob_requests >= 1  # the engine was really uploading
    assert _engine_let_go(stub_registry), "the engine kept pushing after rtbuild gave up"


@pytest.mark.parametrize("stub_registry", ["drip"], indirect=True)
def test_a_dripping_push_hits_the_overall_bound(
    stub_registry: StallRegistry, big_image: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    builder = DockerBuilder(push_stall_timeout=30, push_timeout=6)
    started = time.monotonic()
    error = bounded(lambda: builder.push(big_image), within=60, action="push")
    assert isinstance(error, PushError), error
    assert "did not finish within 6 s; the push was stopped" in error.message
    assert time.monotonic() - started < 25  # the overall bound, not the stall watchdog
    assert _engine_let_go(stub_registry), "the engine kept pushing after rtbuild gave up"


@pytest.mark.parametrize("stub_registry", ["unanswered"], indirect=True)
def test_cli_build_push_to_a_registry_that_never_answers_the_upload(
    stub_registry: StallRegistry, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /rt.txt\n")
    (tmp_path / "rtbuild.toml").write_text("[builders.docker]\npush_stall_timeout = 3\n")
    image = f"{stub_registry.host}/rt-test/push-unanswered:{uuid.uuid4().hex[:10]}"
    try:
        # Before the fix this never returned: run_cli's timeout makes that a failure.
        proc = run_cli("build", str(context), "-t", image, "--push", cwd=tmp_path, docker_config_dir=tmp_path)
    finally:
        subprocess.run([DOCKER, "rmi", "-f", image], capture_output=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert stub_registry.blob_requests >= 1  # the engine had started the upload
    assert f"error: pushing {image} to {stub_registry.host} stalled: no progress for 3 s" in proc.stderr
    assert "  step: push\n" in proc.stderr
    assert "  from: builder docker" in proc.stderr
    assert "  hint: check that the registry" in proc.stderr
    assert proc.stdout == ""
