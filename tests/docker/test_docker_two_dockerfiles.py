"""Two different Dockerfiles named for one build (``-f`` and another in ``--extra``) are
refused: rtbuild read the first, the docker client built the last."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def test_a_second_dockerfile_in_the_extra_arguments_is_refused(images: h.Images, context: Path, tmp_path: Path) -> None:
    """``--extra=-f --extra=/abs/A --extra=--file=../B`` with B outside the context: the
    digest held A's text, the client built B, and after B was edited the next request was
    a no-op skip whose image still held B's old text."""
    (tmp_path / "A.Dockerfile").write_text("FROM busybox:latest\nRUN echo A > /which\n")
    (tmp_path / "B.Dockerfile").write_text("FROM busybox:latest\nRUN echo B1 > /which\n")
    (context / "Dockerfile").write_text("FROM busybox:latest\n")
    named = ["--extra=-f", f"--extra={tmp_path / 'A.Dockerfile'}", "--extra=--file=../B.Dockerfile"]
    argv = [h.RTBUILD, "build", ".", "-t", images.tag(), *named, "--json"]
    refused = subprocess.run(argv, cwd=context, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr
    document = json.loads(refused.stdout)
    assert document["error"] == "BuildContextError" and "more than one Dockerfile" in document["message"]
    assert h.docker(images.cli, "image", "inspect", images.tag(), check=False).returncode != 0

    both = h.cli_build(
        str(context), "-f", "Dockerfile", "--extra=-f", f"--extra={tmp_path / 'B.Dockerfile'}", "-t", images.tag()
    )
    assert both.returncode == 2 and "more than one Dockerfile" in both.stderr
    same = h.cli_build(
        str(context), "-f", "Dockerfile", f"--extra=--file={context / 'Dockerfile'}", "-t", images.tag(), "--json"
    )
    assert same.returncode == 0, same.stderr  # one file, named twice
    images.ids.add(json.loads(same.stdout)["details"]["image_id"])
