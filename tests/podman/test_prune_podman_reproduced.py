"""``rtbuild prune --builder podman``: an image a build reproduced (every step cached: same
ID, same ``Created``, tagged anew) counts as new. Podman keeps no tag time; ranked by
``Created`` alone, --keep 1 removed the image the last build made and kept an older one
(as on Docker before 48574cc)."""

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
def repo(podman_cli: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # builds and prunes share it
    name = f"rt-podman-test/reproduced-{uuid.uuid4().hex[:10]}"
    yield name
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", f"localhost/{name}", check=False).stdout
    refs = [ref for ref in out.split() if ref]
    if refs:
        podman("rmi", "-f", *refs, check=False)


def _prune(*args: str) -> dict[str, object]:
    argv = [RTBUILD, "prune", "--builder", "podman", "--json", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def _inspect(tag: str) -> dict[str, object]:
    info: list[dict[str, object]] = json.loads(podman("image", "inspect", f"localhost/{tag}").stdout)
    return info[0]


def test_an_image_a_build_reproduced_counts_as_new(tmp_path: Path, repo: str) -> None:
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nARG N=0\nRUN echo $N > /n\n")
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    builder.name = "podman"
    token = uuid.uuid4().hex[:8]
    made = []
    for n, value in ((1, "a"), (2, "b"), (3, "a")):
        request = BuildRequest(str(ctx), tags=[f"{repo}:{n}"], build_args={"N": f"{token}-{value}"})
        made.append(builder.build_request(request).image)
    first, second, third = made
    info = {tag: _inspect(tag) for tag in made}
    assert info[first]["Id"] == info[third]["Id"] != info[second]["Id"]  # reproduced, every step cached
    assert str(info[third]["Created"]) < str(info[second]["Created"])
    planned = _prune("--keep", "1", "--repo", repo, "--dry-run")
    assert [(item["kind"], item["name"]) for item in planned["items"]] == [  # type: ignore[index]
        ("image", f"localhost/{second}")
    ]
