"""Extra arguments that name where a build's result goes: ``--iidfile`` (written by rtbuild,
for a build and a no-op skip alike), ``--output`` (refused: it makes no image) and ``-t``
(refused: a tag the skip, the lock and the push would not know), ``--platform`` (refused:
give it as the request's)."""

from __future__ import annotations

import json
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


def test_iidfile_holds_the_image_id_after_a_build_and_after_a_skip(
    images: h.Images, context: Path, tmp_path: Path
) -> None:
    """rtbuild passed its own --iidfile after the user's, and the client writes only the
    last one: the user's file was never written, and a skip runs no engine at all."""
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY data /data\n")
    (context / "data").write_text("one\n")
    iid = tmp_path / "iid"
    tag = images.tag()
    built = h.cli_build(str(context), "-t", tag, "--extra=--iidfile", f"--extra={iid}", "--json")
    assert built.returncode == 0, built.stderr
    first = json.loads(built.stdout)["details"]["image_id"]
    images.ids.add(first)
    assert iid.read_text() == first == h.docker(images.cli, "image", "inspect", "-f", "{{.Id}}", tag).stdout.strip()

    iid.write_text("sha256:stale")
    skipped = h.cli_build(str(context), "-t", tag, f"--extra=--iidfile={iid}", "--json")
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["cached"] is True
    assert iid.read_text() == first

    (context / "data").write_text("two\n")
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY data /data\nRUN false\n")
    failed = h.cli_build(str(context), "-t", tag, f"--extra=--iidfile={iid}")
    assert failed.returncode == 1
    assert not iid.exists()  # as docker does: a failed build leaves no earlier ID behind

    missing = h.cli_build(str(context), "-t", tag, f"--extra=--iidfile={tmp_path / 'no' / 'iid'}", "--json")
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["step"] == "check --iidfile"


def test_output_is_refused_before_the_engine_runs(images: h.Images, context: Path, tmp_path: Path) -> None:
    """``--output type=local`` made no image: the client then failed on its --iidfile and
    rtbuild said the connection to the engine had dropped."""
    (context / "Dockerfile").write_text("FROM busybox:latest\nRUN echo hi > /hello\n")
    out = tmp_path / "out"
    for extra in ([f"--extra=--output=type=local,dest={out}"], ["--extra=-o", f"--extra=type=local,dest={out}"]):
        refused = h.cli_build(str(context), "-t", images.tag(), *extra, "--json")
        assert refused.returncode == 2, refused.stderr
        document = json.loads(refused.stdout)
        assert document["error"] == "ConfigError" and "--output" in document["hint"]
        assert "dropped" not in document["message"] and "Traceback" not in refused.stderr
        assert not out.exists()


def test_a_tag_given_as_an_extra_argument_is_refused(images: h.Images, context: Path) -> None:
    """``--extra=-t --extra=OTHER``: the engine tagged OTHER too, but the no-op skip checked
    only the request's tags. After OTHER was re-tagged to another image, the next request
    was a skip that reported success while OTHER named busybox."""
    (context / "Dockerfile").write_text("FROM busybox:latest\nRUN echo hi > /hello\n")
    for extra in (["--extra=-t", f"--extra={images.tag('other')}"], [f"--extra=--tag={images.tag('other')}"]):
        refused = h.cli_build(str(context), "-t", images.tag(), *extra, "--json")
        assert refused.returncode == 2, refused.stderr
        document = json.loads(refused.stdout)
        assert document["error"] == "ConfigError" and "-t" in document["hint"]
        assert h.docker(images.cli, "image", "inspect", images.tag("other"), check=False).returncode != 0
        dry = h.cli_build(str(context), "-t", images.tag(), *extra, "--dry-run")  # refused the same way
        assert dry.returncode == 2 and "names a tag rtbuild would not know" in dry.stderr and dry.stdout == ""


def test_a_platform_given_as_an_extra_argument_is_refused(images: h.Images, context: Path) -> None:
    """``--extra=--platform=linux/arm64``: the client built for arm64 while rtbuild resolved
    TARGETARCH, checked the base image and reported the result for the request's platform
    (none, so the host's); a comma list went down the single-platform path."""
    (context / "Dockerfile").write_text("FROM busybox:latest\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n")
    for extra in (["--extra=--platform=linux/arm64"], ["--extra=--platform", "--extra=linux/amd64,linux/arm64"]):
        for dry in ((), ("--dry-run",)):
            refused = h.cli_build(str(context), "-t", images.tag(), *extra, *dry, "--json")
            assert refused.returncode == 2, refused.stderr
            document = json.loads(refused.stdout)
            assert document["error"] == "ConfigError" and "--platform" in document["hint"]
            assert "sets a platform rtbuild would not know" in document["message"]
            assert h.docker(images.cli, "image", "inspect", images.tag(), check=False).returncode != 0


def test_an_iidfile_that_is_no_regular_file_is_refused_and_left_alone(
    images: h.Images, context: Path, tmp_path: Path
) -> None:
    """It is removed before the build: as root ``--iidfile /dev/null`` removed /dev/null.
    (A node of /dev/null's own numbers stands in for it, so a regression removes only that.)"""
    import os
    import stat

    (context / "Dockerfile").write_text("FROM busybox:latest\n")
    null, fifo = tmp_path / "null", tmp_path / "fifo"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(fifo)
    for path in (null, fifo):
        refused = h.cli_build(str(context), "-t", images.tag(), f"--extra=--iidfile={path}", "--json")
        assert refused.returncode == 2, refused.stderr
        assert json.loads(refused.stdout)["step"] == "check --iidfile"
    assert stat.S_ISCHR(os.stat(null).st_mode) and stat.S_ISFIFO(os.stat(fifo).st_mode)
    written = tmp_path / "iid"
    built = h.cli_build(str(context), "-t", images.tag(), f"--extra=--iidfile={written}", "--json")
    assert built.returncode == 0, built.stderr
    images.ids.add(json.loads(built.stdout)["details"]["image_id"])
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o644  # readable like the engines' own
