"""``rtbuild prune --builder podman``: --keep 1 removes the older rtbuild images of a
repository, keeps the newest and any image a container uses, never an unlabelled one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _podman_support import podman, write_context
from rtbuild import BuildRequest
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


@pytest.fixture
def repo(podman_cli: str) -> Iterator[str]:
    name = f"rt-podman-test/prune-{uuid.uuid4().hex[:10]}"
    yield name
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", f"localhost/{name}", check=False).stdout
    refs = [ref for ref in out.split() if ref]
    if refs:
        podman("rmi", "-f", *refs, check=False)


def _three(tmp_path: Path, repo: str) -> list[str]:
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nARG N=0\nRUN echo $N > /n\n")
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    builder.name = "podman"
    token = uuid.uuid4().hex[:8]
    tags = []
    for n in (1, 2, 3):
        request = BuildRequest(str(ctx), tags=[f"{repo}:{n}"], build_args={"N": f"{token}-{n}"})
        tags.append(builder.build_request(request).image)
    return tags


def _prune(*args: str) -> dict[str, object]:
    argv = [RTBUILD, "prune", "--builder", "podman", "--json", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def _present(repo: str) -> set[str]:
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", f"localhost/{repo}").stdout
    return {ref.removeprefix("localhost/") for ref in out.split()}


def test_keep_one_keeps_newest_in_use_and_unlabelled(tmp_path: Path, repo: str) -> None:
    plain = f"{repo}:plain"
    write_context(tmp_path / "plain", f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /p\n")
    podman("build", "-q", "-t", plain, str(tmp_path / "plain"))
    one, two, three = _three(tmp_path, repo)
    container = f"rt-podman-test-{uuid.uuid4().hex[:10]}"
    podman("create", "--name", container, f"localhost/{one}")
    try:
        planned = _prune("--keep", "1", "--repo", repo, "--dry-run")
        assert [item["name"] for item in planned["items"]] == [f"localhost/{two}"]  # type: ignore[index]
        assert _present(repo) == {plain, one, two, three}
        podman("rm", "-f", container)
        done = _prune("--keep", "1", "--repo", repo)
        names = [(item["name"], item["removed"]) for item in done["items"]]  # type: ignore[index]
        assert names == [(f"localhost/{one}", True), (f"localhost/{two}", True)]
        assert _present(repo) == {plain, three}
    finally:
        podman("rm", "-f", container, check=False)
