"""Ctrl-C/SIGTERM while build-many pushes: rtbuild ends at once and the engine's pushes end too.

build-many pushes in worker threads, which never see the main thread's interrupt. A worker
reading the engine's push stream went on until the push finished or, on a registry that
stopped taking the upload, until ``push_stall_timeout`` (120 s by default): rtbuild sat
that long after SIGTERM before exiting. The interrupt now severs every push stream, which
the engine answers by cancelling its push, as when the stall bound closes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _registry_support import DOCKER, RTBUILD, random_layer_image
from _stall_registry import StallRegistry

pytestmark = [pytest.mark.engine, pytest.mark.registry]

#: Random, so neither gzip nor the engine's layer cache shortens the upload: it outlasts
#: the socket buffers, so an engine still pushing is still writing when the stub resumes.
_LAYER_BYTES = 48 * 1024 * 1024


@pytest.fixture
def stub_registry(docker_engine: str) -> Iterator[StallRegistry]:
    stub = StallRegistry("manifest", uploads="stall")
    yield stub
    stub.close()


@pytest.fixture
def big_base(docker_engine: str) -> Iterator[str]:
    """A local one-layer image of random data (no registry in its name)."""
    with random_layer_image(f"rt-test-pushint/base:{uuid.uuid4().hex[:10]}", _LAYER_BYTES) as image:
        yield image


@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_an_interrupt_ends_build_many_pushes_at_once(
    stub_registry: StallRegistry, big_base: str, tmp_path: Path, signum: int
) -> None:
    tags = [f"{stub_registry.host}/rt-test/pushint-{i}:{uuid.uuid4().hex[:10]}" for i in range(2)]
    blocks = []
    for i, tag in enumerate(tags):
        context = tmp_path / f"c{i}"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {big_base}\nLABEL nonce={uuid.uuid4().hex}\n")
        blocks.append(f'[[build]]\npath = "{context}"\ntags = ["{tag}"]\npush = true\n')
    (tmp_path / "images.toml").write_text("\n".join(blocks))
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path)}
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[name] = str(tmp_path / name)
    proc = subprocess.Popen(
        [RTBUILD, "build-many", str(tmp_path / "images.toml"), "-j", "4", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert stub_registry.blob_requested.wait(120), "no push reached the registry"
        proc.send_signal(signum)
        try:
            # Before the fix: about 120 s (push_stall_timeout), then the same report.
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("build-many was still pushing 60 s after the signal")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        subprocess.run([DOCKER, "rmi", "-f", *tags], capture_output=True, check=False)
    assert proc.returncode == 128 + signum, err[-3000:]
    report = json.loads(out)  # stdout: the report alone, progress on stderr
    assert report["interrupted"] is True and report["ok"] is False
    interrupted = [b for b in report["builds"] if b["status"] == "interrupted"]
    pushing = [b for b in interrupted if b["error"]["step"] == "push"]
    # The signal follows the first upload: the other build may still have been building
    # then (CI on a loaded machine), and says so.
    assert pushing, report
    for build in interrupted:
        pushed = f"before {build['name']} was pushed (its build had finished)"
        built = f"before {build['name']} was built"
        assert build["error"]["message"].endswith(pushed if build in pushing else built), build
    # The engine cancelled its uploads: once the stub takes data again, it closes them
    # instead of sending the rest of the layer.
    stub_registry.resume()
    assert stub_registry.blob_closed.wait(20), "the engine kept pushing after rtbuild was stopped"
