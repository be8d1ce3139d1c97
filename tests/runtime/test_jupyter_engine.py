"""The jupyter + cacerts runtime image on debian:bookworm, built once per session: the kernel
gateway answers its HTTP API, a kernel runs code, the host CA bundle is in the image, and a
second request reuses the image without building."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import get_plugin_manager
from rtbuild.builder import BuildResult
from rtbuild.runtime._build import build_runtime_image
from rtbuild_cacerts.plugin import CA_ENV_VARS, DEFAULT_BUNDLE, DEFAULT_IMAGE_PATH
from rtbuild_jupyter.plugin import CHECK_SCRIPT, START_SCRIPT
from runtime_engine_helpers import counting_builder, docker, inspect, remove_repo

pytestmark = [pytest.mark.engine, pytest.mark.slow]
BASE = "debian:bookworm"
PLUGINS = ["jupyter", "cacerts"]


def _config() -> Config:
    # The two contrib plugins, whatever else is installed (plugin lists never filter builders).
    return Config(load_plugins=["jupyter", "cacerts"])


@dataclass
class JupyterImage:
    repo: str
    result: BuildResult


@pytest.fixture(scope="session")
def jupyter_image(docker_engine: str) -> Iterator[JupyterImage]:
    """Built once per session (minutes from scratch; BuildKit's cache makes reruns fast)."""
    if inspect(docker_engine, BASE) is None:
        pytest.fail(f"{BASE} is missing: run `make engine` (scripts/engine.sh)", pytrace=False)
    repo = f"rtbuild-test/jupyter-{uuid.uuid4().hex[:8]}"
    config = _config()
    result = build_runtime_image(config, BASE, PLUGINS, repo=repo, pm=get_plugin_manager(config))
    yield JupyterImage(repo, result)
    remove_repo(docker_engine, repo)


@pytest.fixture(scope="module")
def gateway(docker_engine: str, jupyter_image: JupyterImage) -> Iterator[tuple[str, str]]:
    """A container serving the kernel gateway on a 127.0.0.1-only port: (container id, base URL)."""
    name = f"rtbuild-test-jupyter-{uuid.uuid4().hex[:8]}"
    docker(
        docker_engine, "run", "-d", "--name", name, "-p", "127.0.0.1::8888", jupyter_image.result.image, START_SCRIPT
    )
    try:
        port = docker(docker_engine, "port", name, "8888/tcp").stdout.split()[0].rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        _wait_for(base, docker_engine, name)
        yield name, base
    finally:
        docker(docker_engine, "rm", "-f", name, check=False)


def _wait_for(base: str, cli: str, name: str) -> None:
    deadline = time.monotonic() + 120  # readiness wait, not a speed assertion
    with httpx.Client(trust_env=False, timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{base}/api").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    logs = docker(cli, "logs", name, check=False)
    pytest.fail(f"the kernel gateway did not answer: {(logs.stdout + logs.stderr)[-2000:]}")


def test_the_image_was_composed_from_both_plugins(jupyter_image: JupyterImage, docker_engine: str) -> None:
    result = jupyter_image.result
    assert result.image == result.details["exact_tag"] and result.image.startswith(jupyter_image.repo + ":")
    assert result.details["plugins"] == ["cacerts", "jupyter"]  # cacerts (order -100) first
    labels = (inspect(docker_engine, result.image) or {})["Config"]["Labels"]
    assert labels["org.rtbuild.runtime.plugins"] == "cacerts,jupyter"


def test_kernel_gateway_answers_its_http_api(gateway: tuple[str, str]) -> None:
    _, base = gateway
    with httpx.Client(trust_env=False, timeout=60) as client:
        specs = client.get(f"{base}/api/kernelspecs").json()
        assert specs["default"] == "python3"
        argv = specs["kernelspecs"]["python3"]["spec"]["argv"]
        assert argv[0] == "/opt/rtbuild/jupyter-venv/bin/python"
        started = client.post(f"{base}/api/kernels", json={"name": "python3"})
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        assert client.get(f"{base}/api/kernels/{kernel_id}").json()["id"] == kernel_id
        assert client.delete(f"{base}/api/kernels/{kernel_id}").status_code == 204


def test_a_kernel_runs_code_through_the_gateway(gateway: tuple[str, str], docker_engine: str) -> None:
    name, _ = gateway
    ok = docker(docker_engine, "exec", name, CHECK_SCRIPT, "print(6 * 7)", check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "42"
    failing = docker(docker_engine, "exec", name, CHECK_SCRIPT, "1 / 0", check=False)
    assert failing.returncode == 1 and "ZeroDivisionError" in failing.stderr


def test_the_host_ca_bundle_and_variables_are_in_the_image(jupyter_image: JupyterImage, docker_engine: str) -> None:
    script = "; ".join(f'echo "{var}=${var}"' for var in CA_ENV_VARS) + f"; cat {DEFAULT_IMAGE_PATH}"
    out = docker(docker_engine, "run", "--rm", jupyter_image.result.image, "sh", "-c", script).stdout
    lines = out.split("\n")
    assert lines[: len(CA_ENV_VARS)] == [f"{var}={DEFAULT_IMAGE_PATH}" for var in CA_ENV_VARS]
    assert "\n".join(lines[len(CA_ENV_VARS) :]).strip() == Path(DEFAULT_BUNDLE).read_text().strip()


def test_the_same_request_reuses_the_image(jupyter_image: JupyterImage, docker_engine: str) -> None:
    config = _config()
    pm = get_plugin_manager(config)
    builder, runs = counting_builder(pm, config)
    before: Any = inspect(docker_engine, jupyter_image.result.image)
    again = build_runtime_image(config, BASE, ["cacerts", "jupyter"], repo=jupyter_image.repo, pm=pm, builder=builder)
    assert again.image == jupyter_image.result.image
    assert again.cached and again.details["runtime_tier"] == "exact" and runs == []
    after: Any = inspect(docker_engine, again.image)
    assert (after["Id"], after["Created"]) == (before["Id"], before["Created"])
