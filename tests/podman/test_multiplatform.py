"""Multi-platform images on the real engines: amd64 native plus arm64 under QEMU.

The arm64 base is scripts/podman.sh's ``rtbuild/busybox:arm64`` (FROM scratch + Debian's
busybox-static:arm64). A two-platform build with push must leave one index holding both
platforms in a real docker-registry on loopback, read back through the registry API and by
``skopeo inspect --raw``; the arm64 image must run (``uname -m`` prints aarch64).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from _podman_support import ARCH_DOCKERFILE, PODMAN, SKOPEO, Names, podman, write_context
from rtbuild import BuildRequest
from rtbuild.oci import RegistryClient, platforms_of
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]
BOTH = "linux/amd64,linux/arm64"


def _check_index(image: str) -> dict[str, Any]:
    """The index under ``image``, checked through the registry API and with skopeo."""
    host, rest = image.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    accept = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"
    response = httpx.get(f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": accept}, trust_env=False)
    assert response.status_code == 200
    api = response.json()
    arches = sorted(entry["platform"]["architecture"] for entry in api["manifests"])
    assert arches == ["amd64", "arm64"]
    raw = subprocess.run(
        [SKOPEO, "inspect", "--raw", "--tls-verify=false", f"docker://{image}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert json.loads(raw) == api  # the independent reader sees the same index
    assert platforms_of(RegistryClient(), image) == ("linux/amd64", "linux/arm64")
    return api


@pytest.fixture
def arch_context(tmp_path: Path) -> Path:
    return write_context(tmp_path / "arch", ARCH_DOCKERFILE)


@pytest.fixture
def podman_builder(tmp_path: Path, podman_cli: str) -> PodmanBuilder:
    built = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    built.name = "podman"
    return built


def test_podman_two_platforms_push_one_index(
    podman_builder: PodmanBuilder, names: Names, registry: Any, arch_context: Path, qemu: None
) -> None:
    image, alias = registry.ref(names.new("rt-mp/podman")), registry.ref(names.new("rt-mp/podman"))
    names.made += [image, alias]
    request = BuildRequest(path=str(arch_context), tags=[image, alias], platform=BOTH, push=True)
    result = podman_builder.build_request(request)
    assert result.details["pushed"] is True
    assert set(result.details["platforms"]) == {"linux/amd64", "linux/arm64"}
    assert _check_index(image) == _check_index(alias)

    assert podman_builder.image_exists(image, pull_from_repo=False, platform="linux/s390x") is False
    assert podman_builder.image_exists(image, platform="linux/s390x") is False  # the index lacks it
    assert podman_builder.image_exists(image, platform=BOTH) is True
    podman("rmi", "-f", image, check=False)
    podman_builder.podman.forget()
    assert podman_builder.image_exists(image, platform="linux/arm64") is True  # pulled the arm64 entry
    out = podman("run", "--rm", "--platform", "linux/arm64", image, "sh", "-c", "uname -m; cat /arch").stdout
    assert out.split() == ["aarch64", "aarch64"]


def test_podman_single_foreign_platform_loads_locally(
    podman_builder: PodmanBuilder, names: Names, arch_context: Path, qemu: None
) -> None:
    image = names.new("rt-mp/podman-arm64")
    result = podman_builder.build_request(BuildRequest(path=str(arch_context), tags=[image], platform="linux/arm64"))
    info = podman_builder.inspect_image(image)
    assert info is not None and info.platforms == ("linux/arm64",)
    assert result.details["image_id"] == info.id
    assert podman("run", "--rm", image, "uname", "-m").stdout.strip() == "aarch64"
    again = podman_builder.build_request(BuildRequest(path=str(arch_context), tags=[image], platform="linux/arm64"))
    assert again.cached is True
    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    for platform, code in (("linux/arm64", 0), ("linux/amd64", 1)):
        argv = [rtbuild, "exists", image, "--builder", "podman", "--no-pull", "--platform", platform]
        assert subprocess.run(argv, capture_output=True, timeout=120).returncode == code


def test_podman_two_platforms_without_push_keep_per_platform_tags(
    podman_builder: PodmanBuilder, names: Names, arch_context: Path, qemu: None
) -> None:
    image = names.new("rt-mp/podman-local")
    result = podman_builder.build_request(BuildRequest(path=str(arch_context), tags=[image], platform=BOTH))
    assert "pushed" not in result.details
    assert podman("run", "--rm", image, "cat", "/arch").stdout.strip() == "x86_64"  # the native one
    arm = podman_builder.inspect_image(f"{image}-linux-arm64")
    assert arm is not None and arm.platforms == ("linux/arm64",)


# --- Docker ---------------------------------------------------------------------------------


def _docker(docker_engine: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([docker_engine, *args], capture_output=True, text=True, check=True, timeout=600)


@pytest.fixture
def docker_builder(tmp_path: Path, docker_engine: str) -> Any:
    from rtbuild_docker import DockerBuilder

    built = DockerBuilder(log_dir=str(tmp_path / "logs"))
    built.name = "docker"
    return built


def test_docker_two_platforms_push_one_index_and_arm64_runs(
    docker_builder: Any, docker_engine: str, names: Names, registry: Any, arch_context: Path, qemu: None
) -> None:
    image = registry.ref(names.new("rt-mp/docker"))
    names.made.append(image)
    result = docker_builder.build_request(BuildRequest(path=str(arch_context), tags=[image], platform=BOTH, push=True))
    assert result.details["pushed"] is True
    index = _check_index(image)
    assert index["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    # Pull the arm64 entry into the engine and run it under emulation.
    subprocess.run([docker_engine, "rmi", image], capture_output=True, check=False)
    assert docker_builder.image_exists(image, platform="linux/s390x") is False
    assert docker_builder.image_exists(image, platform="linux/arm64") is True
    out = _docker(docker_engine, "run", "--rm", "--platform", "linux/arm64", image, "sh", "-c", "uname -m; cat /arch")
    assert out.stdout.split() == ["aarch64", "aarch64"]


def test_docker_single_foreign_platform_loads_locally(
    docker_builder: Any, docker_engine: str, names: Names, arch_context: Path, qemu: None
) -> None:
    image = names.new("rt-mp/docker-arm64")
    request = BuildRequest(path=str(arch_context), tags=[image], platform="linux/arm64")
    docker_builder.build_request(request)
    info = docker_builder.inspect_image(image)
    assert info is not None and info.platforms == ("linux/arm64",)
    assert _docker(docker_engine, "run", "--rm", image, "uname", "-m").stdout.strip() == "aarch64"
    assert docker_builder.build_request(request).cached is True
    assert docker_builder.image_exists(image, pull_from_repo=False, platform="linux/arm64") is True
    assert docker_builder.image_exists(image, pull_from_repo=False, platform="linux/amd64") is False


def test_runtime_image_for_arm64_with_podman(names: Names, tmp_path: Path, qemu: None) -> None:
    """``rtbuild runtime --platform linux/arm64``: built for arm64, then reused (the local
    tier checks the platform)."""
    repo = names.new("rt-mp/runtime").split(":", 1)[0]
    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    argv = [rtbuild, "runtime", "--base", "rtbuild/busybox:arm64", "--plugin", "cacerts", "--repo", repo]
    argv += ["--builder", "podman", "--platform", "linux/arm64", "--json", "-q"]
    try:
        first = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        image = json.loads(first.stdout)["image"]
        arch = podman("image", "inspect", "--format", "{{.Architecture}}", image).stdout.strip()
        assert arch == "arm64"
        again = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["image"] == image
        assert json.loads(again.stdout)["cached"] is True
    finally:
        tags = podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        podman("rmi", "-f", *[t for t in tags if repo in t], check=False)


# --- one platform failing --------------------------------------------------------------------

ARM64_FAILS = ARCH_DOCKERFILE + 'RUN [ "$(cat /arch)" != aarch64 ] || { echo no arm64 here; exit 9; }\n'


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_one_platform_failing_pushes_nothing_and_leaves_the_requested_tags(
    engine: str, request: pytest.FixtureRequest, names: Names, registry: Any, tmp_path: Path, qemu: None
) -> None:
    """arm64's build fails after amd64's succeeded: the error names linux/arm64; with push,
    the registry receives nothing (amd64's TAG-linux-amd64 was pushed before arm64 ran, and
    stayed there without an index); without push, the requested tag keeps its old image
    (amd64 took it before arm64 failed)."""
    from rtbuild import BuildFailedError

    builder = request.getfixturevalue("docker_builder" if engine == "docker" else "podman_builder")
    ctx = write_context(tmp_path / "ctx", ARM64_FAILS)
    pushed = registry.ref(names.new(f"rt-mp/fails-{engine}"))
    names.made.append(pushed)
    with pytest.raises(BuildFailedError) as failed:
        builder.build_request(BuildRequest(path=str(ctx), tags=[pushed], platform=BOTH, push=True))
    assert str(failed.value).startswith("linux/arm64 (platform 2 of 2): ")
    assert "nothing was pushed" in str(failed.value)
    assert any("no arm64 here" in line for line in failed.value.log_tail)
    repo = pushed.split("/", 1)[1].rsplit(":", 1)[0]
    listed = httpx.get(f"http://{registry.host}/v2/{repo}/tags/list", trust_env=False)
    assert listed.status_code == 404 or not listed.json().get("tags"), listed.text

    local = names.new(f"rt-mp/fails-{engine}-local")
    cli = ["/usr/bin/docker"] if engine == "docker" else [PODMAN]
    subprocess.run([*cli, "tag", "rtbuild/busybox:amd64", local], check=True, capture_output=True)
    before = subprocess.run([*cli, "image", "inspect", "--format", "{{.Id}}", local], capture_output=True, text=True)
    with pytest.raises(BuildFailedError, match=r"^linux/arm64 \(platform 2 of 2\)"):
        builder.build_request(BuildRequest(path=str(ctx), tags=[local], platform=BOTH))
    after = subprocess.run([*cli, "image", "inspect", "--format", "{{.Id}}", local], capture_output=True, text=True)
    assert after.stdout == before.stdout and before.stdout.strip()


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_a_platform_spelt_twice_or_in_capitals_is_one_platform(
    engine: str, names: Names, arch_context: Path, tmp_path: Path, qemu: None
) -> None:
    """``--platform Linux/ARM64,linux/arm64/v8`` names one platform: one build, as the
    engines read it. The string went to the engine verbatim (Docker: 'is an invalid
    component', blamed on the build) or was refused as a platform the builder lacks."""
    image = names.new(f"rt-mp/spelt-{engine}")
    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    argv = [rtbuild, "build", str(arch_context), "-t", image, "--builder", engine, "--json"]
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([*argv, "--platform", "Linux/ARM64,linux/arm64/v8"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "platforms" not in json.loads(done.stdout)["details"]  # one plain build, no per-platform tags
    cli = "/usr/bin/docker" if engine == "docker" else PODMAN
    arch = subprocess.run(
        [cli, "image", "inspect", "--format", "{{.Architecture}}", image], capture_output=True, text=True
    )
    assert arch.stdout.strip() == "arm64"
    again = subprocess.run([*argv, "--platform", "linux/arm64"], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["cached"] is True  # the same input digest


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_a_base_that_is_another_platforms_single_image_is_warned_about(
    engine: str, names: Names, registry: Any, tmp_path: Path, qemu: None
) -> None:
    """A base pushed from an amd64 machine (one manifest, no index): BuildKit builds arm64
    from it without a word, Buildah with one log line, and the 'arm64' image holds amd64
    programs, pushed under an index that promises arm64. rtbuild now warns, naming the base;
    the amd64 build from it does not."""
    base = registry.ref(names.new("rt-mp/amd64-only"))
    subprocess.run(["/usr/bin/docker", "tag", "rtbuild/busybox:amd64", base], check=True, capture_output=True)
    subprocess.run(["/usr/bin/docker", "push", base], check=True, capture_output=True, timeout=300)
    subprocess.run(["/usr/bin/docker", "rmi", base], check=True, capture_output=True)  # the engine pulls it
    ctx = write_context(tmp_path / "ctx", f"FROM {base}\nCOPY app.txt /app.txt\n", {"app.txt": "1\n"})
    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    warned = {}
    for platform in ("linux/arm64", "linux/amd64"):
        image = names.new(f"rt-mp/foreign-base-{engine}")
        argv = [rtbuild, "build", str(ctx), "-t", image, "--builder", engine, "--platform", platform, "--json"]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        warned[platform] = [e for e in events if e.get("event") == "warning" and e.get("image") == base]
    assert len(warned["linux/arm64"]) == 1 and "linux/amd64 programs" in warned["linux/arm64"][0]["message"]
    assert warned["linux/amd64"] == []
