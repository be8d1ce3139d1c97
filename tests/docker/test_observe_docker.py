"""Issue 14 on the real engine: ``rtbuild context`` counts what the engine receives, and a
slow ``RUN`` step tops the ``--profile`` output."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild._observe.context import inspect_context

pytestmark = pytest.mark.engine

images, isolated_dirs = h.images, h.isolated_dirs


def _tree(root: Path) -> None:
    (root / "src" / "pkg").mkdir(parents=True)
    for i in range(30):
        (root / "src" / "pkg" / f"m{i}.py").write_text(f"x = {i}\n")
    (root / "node_modules" / "left").mkdir(parents=True)
    (root / "node_modules" / "left" / "index.js").write_text("js")
    (root / "node_modules" / "keep.js").write_text("keep")
    (root / "logs").mkdir()
    for i in range(5):
        (root / "logs" / f"{i}.log").write_text("log")
    (root / "notes.md").write_text("n")
    (root / "README.md").write_text("r")
    os.symlink("src/pkg/m1.py", root / "link.py")
    (root / ".dockerignore").write_text("node_modules\n!node_modules/keep.js\n*.md\n!README.md\nlogs/*.log\n")
    (root / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /ctx\n")


def test_context_counts_agree_with_the_engine(images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    _tree(ctx)
    report = inspect_context(str(ctx))
    result = h.build(images, ctx)
    files = h.docker(images.cli, "run", "--rm", result.image, "sh", "-c", "find /ctx -type f | sort")
    links = h.docker(images.cli, "run", "--rm", result.image, "sh", "-c", "find /ctx -type l | wc -l")
    received = files.stdout.split()
    assert len(received) == report.files, received
    assert "/ctx/node_modules/keep.js" in received and "/ctx/README.md" in received
    assert "/ctx/notes.md" not in received and not any(p.endswith(".log") for p in received)
    assert int(links.stdout) == report.symlinks == 1
    rules = {r.pattern: r.files for r in report.excluded}
    assert rules == {"node_modules": 1, "*.md": 1, "logs/*.log": 5}


def test_slow_run_step_tops_the_profile(images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    ctx = tmp_path / "slow"
    ctx.mkdir()
    token = uuid.uuid4().hex[:8]  # a new step text: never a BuildKit cache hit
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {token} > /t\nRUN sleep 2 && echo {token}\n")
    metrics = tmp_path / "metrics.jsonl"
    proc = h.cli_build(
        str(ctx), "-t", images.tag(), "--profile", "--json", "-q", env={"RTBUILD_METRICS_FILE": str(metrics)}
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    images.ids.add(result["details"]["image_id"])
    steps = result["details"]["steps"]
    slowest = max(steps, key=lambda s: s["duration_s"])
    assert slowest["name"].endswith(f"RUN sleep 2 && echo {token}") and slowest["duration_s"] >= 2.0
    assert slowest["cached"] is False and slowest["end"] >= slowest["start"]
    lines = proc.stderr.splitlines()
    top = lines[lines.index("profile: slowest steps") + 1]
    assert top.endswith(f"RUN sleep 2 && echo {token}  0 B")
    assert any(line.startswith("profile: cache hits 0% of 2 instruction steps") for line in lines)
    assert result["details"]["layers"][-1]["created_by"] == f"RUN sleep 2 && echo {token}"
    # The metrics plugin stored the profile, and the report ranks the step first.
    (line,) = [json.loads(text) for text in metrics.read_text().splitlines()]
    assert line["success"] is True and [s["name"] for s in line["steps"]] == [s["name"] for s in steps]
    report = subprocess.run(
        [h.RTBUILD, "metrics", "--file", str(metrics), "--json"], capture_output=True, text=True, check=True
    )
    top_step = json.loads(report.stdout)["total"]["slowest_steps"][0]
    assert top_step["name"].endswith(f"RUN sleep 2 && echo {token}") and top_step["runs"] == 1


def test_a_failed_build_is_recorded_with_its_step(images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    ctx = tmp_path / "failing"
    ctx.mkdir()
    token = uuid.uuid4().hex[:8]
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {token} && exit 3\n")
    metrics = tmp_path / "metrics.jsonl"
    proc = h.cli_build(str(ctx), "-t", images.tag(), "-q", env={"RTBUILD_METRICS_FILE": str(metrics)})
    assert proc.returncode == 1
    (line,) = [json.loads(text) for text in metrics.read_text().splitlines()]
    assert line["success"] is False and line["error_class"] == "BuildFailedError"
    assert line["failed_step"] == f"RUN echo {token} && exit 3" and line["repository"] == images.repo
    report = subprocess.run(
        [h.RTBUILD, "metrics", "--file", str(metrics), "--json"], capture_output=True, text=True, check=True
    )
    (group,) = json.loads(report.stdout)["groups"]
    assert group["success_rate"] == 0.0 and group["failures"] == {f"BuildFailedError at RUN echo {token} && exit 3": 1}
