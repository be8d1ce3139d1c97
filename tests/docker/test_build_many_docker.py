"""build-many and the build lock on the real engine: parallel builds, one build per tag."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs = h.images, h.isolated_dirs


def make_context(root: Path, name: str, dockerfile: str) -> Path:
    ctx = root / name
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "nonce").write_text(uuid.uuid4().hex)  # never in any cache: a real build
    return ctx


def small_dockerfile(index: int) -> str:
    return f"FROM busybox:latest\nCOPY nonce /nonce\nRUN echo built-{index} > /which\n"


def write_file(path: Path, entries: list[dict[str, Any]]) -> Path:
    blocks = []
    for entry in entries:
        lines = ["[[build]]"] + [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n")
    return path


def rtbuild(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([h.RTBUILD, *args], capture_output=True, text=True, timeout=600, env=dict(os.environ))


def remember_all(images: h.Images, report: dict[str, Any]) -> None:
    for build in report["builds"]:
        if build["result"] and build["result"]["details"].get("image_id"):
            images.ids.add(build["result"]["details"]["image_id"])


def test_eight_builds_with_four_jobs_all_succeed(images: h.Images, isolated_dirs: Path, tmp_path: Path) -> None:
    entries = [
        {"path": str(make_context(tmp_path, f"c{i}", small_dockerfile(i))), "tags": [images.tag(f"n{i}")]}
        for i in range(8)
    ]
    build_file = write_file(tmp_path / "images.toml", entries)
    proc = rtbuild("build-many", str(build_file), "--jobs", "4", "--json")
    report = json.loads(proc.stdout)
    remember_all(images, report)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["counts"] == {"ok": 8, "failed": 0, "skipped": 0, "interrupted": 0, "cached": 0}
    ids = [b["result"]["details"]["image_id"] for b in report["builds"]]
    assert len(set(ids)) == 8
    for i in range(8):
        info = h.inspect(images.cli, images.tag(f"n{i}"))
        assert info is not None and info["Id"] == ids[i]
    for i in (0, 7):
        out = h.docker(images.cli, "run", "--rm", images.tag(f"n{i}"), "cat", "/which").stdout
        assert out.strip() == f"built-{i}"


def test_failures_are_reported_and_the_rest_is_built(images: h.Images, isolated_dirs: Path, tmp_path: Path) -> None:
    good = make_context(tmp_path, "good", small_dockerfile(1))
    bad = make_context(tmp_path, "bad", "FROM busybox:latest\nRUN echo about to fail && exit 3\n")
    entries = [
        {"path": str(good), "tags": [images.tag("good")]},
        {"name": "broken", "path": str(bad), "tags": [images.tag("bad")]},
    ]
    proc = rtbuild("build-many", str(write_file(tmp_path / "images.toml", entries)), "--jobs", "2")
    assert proc.returncode == 1
    assert proc.stdout.split() == [images.tag("good")]
    assert "build 2 (broken) failed:" in proc.stderr
    assert "exit 3" in proc.stderr or "exit code: 3" in proc.stderr
    assert h.inspect(images.cli, images.tag("good")) is not None
    assert h.inspect(images.cli, images.tag("bad")) is None


def test_eight_concurrent_processes_for_one_tag_build_once(
    images: h.Images, isolated_dirs: Path, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, "shared", small_dockerfile(0))
    tag = images.tag("shared")
    argv = [h.RTBUILD, "build", str(ctx), "-t", tag, "--json"]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        for _ in range(8)
    ]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    results = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    for result in results:
        images.ids.add(result["details"]["image_id"])
    # Exactly one engine build; the seven others waited and hit the no-op skip.
    assert sorted(r["cached"] for r in results) == [False] + [True] * 7
    assert len({r["details"]["image_id"] for r in results}) == 1
    info = h.inspect(images.cli, tag)
    assert info is not None and info["Id"] == results[0]["details"]["image_id"]
    waited = [err for _, err in outputs if f"waiting for the build of {tag} in progress" in err]
    assert waited, "no process reported waiting for the build in progress"


def test_build_many_entries_for_one_tag_build_once(images: h.Images, isolated_dirs: Path, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, "shared", small_dockerfile(0))
    entries = [{"path": str(ctx), "tags": [images.tag("shared")]} for _ in range(8)]
    proc = rtbuild("build-many", str(write_file(tmp_path / "images.toml", entries)), "--jobs", "8", "--json")
    report = json.loads(proc.stdout)
    remember_all(images, report)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["counts"] == {"ok": 8, "failed": 0, "skipped": 0, "interrupted": 0, "cached": 7}
    assert len({b["result"]["details"]["image_id"] for b in report["builds"]}) == 1


def test_progress_of_concurrent_builds_names_the_build_on_every_line(
    images: h.Images, isolated_dirs: Path, tmp_path: Path
) -> None:
    """With -j 2, the engine's step lines of two builds interleave: each one, the plain
    'rtbuild: step: ...' lines included, says which build it belongs to."""
    entries = [
        {
            "name": f"b{i}",
            "path": str(make_context(tmp_path, f"p{i}", small_dockerfile(i))),
            "tags": [images.tag(f"p{i}")],
        }
        for i in range(2)
    ]
    proc = rtbuild("build-many", str(write_file(tmp_path / "images.toml", entries)), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for i in range(2):
        info = h.inspect(images.cli, images.tag(f"p{i}"))
        assert info is not None
        images.ids.add(info["Id"])
    lines = proc.stderr.splitlines()
    steps = [line for line in lines if "step" in line and line.startswith("rtbuild: ")]
    for i in range(2):
        assert f"rtbuild: [b{i}] step: COPY nonce /nonce" in steps, proc.stderr[-3000:]
    unnamed = [line for line in steps if not line.startswith(("rtbuild: [b0] ", "rtbuild: [b1] "))]
    assert unnamed == []
    assert [line for line in lines if line.startswith("#")] == []  # engine lines are prefixed too


def test_one_tag_for_two_different_builds_is_refused_before_building(
    images: h.Images, isolated_dirs: Path, tmp_path: Path
) -> None:
    """Two contexts under one tag: with -j 2 the tag ended on whichever build finished
    last, and the other entry's result (exit 0) named an image the tag no longer held."""
    entries = [
        {
            "path": str(make_context(tmp_path, f"c{i}", small_dockerfile(i))),
            "tags": [images.tag(f"own{i}"), images.tag()],
        }
        for i in range(2)
    ]
    proc = rtbuild("build-many", str(write_file(tmp_path / "images.toml", entries)), "--jobs", "2", "--json")
    assert proc.returncode == 2, proc.stdout
    error = json.loads(proc.stdout)
    assert error["error"] == "ConfigError" and error["step"] == "read build-many file"
    assert f"tag {images.tag()!r} is also a tag of build entry 1" in error["message"]
    assert "differing in: path" in error["message"]
    for name in ("own0", "own1", "latest"):
        assert h.inspect(images.cli, images.tag(name)) is None  # nothing was built
