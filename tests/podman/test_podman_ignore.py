"""The no-op skip hashes the context as Podman's Buildah filters it, or does not skip."""

from __future__ import annotations

from pathlib import Path

import pytest
from _podman_support import Names, podman, write_context
from rtbuild import BuildRequest
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]

COPY_ALL = "FROM busybox:latest\nCOPY . /ctx\n"


def test_buildah_ignore_dialect_never_reports_a_stale_image(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """Buildah 1.28 reads ``**.txt`` as docker 20.10 did (only a file named ``.txt``), so it
    sends a.txt: the digest must see a.txt too, or an edit to it reuses the old image."""
    name = names.new("localhost/rtbuild-test/ignore")
    ctx = write_context(tmp_path / "ctx", COPY_ALL, {"a.txt": "one\n", ".dockerignore": "**.txt\n"})
    request = BuildRequest(path=str(ctx), tags=[name])
    assert builder.build_request(request).cached is False
    assert builder.build_request(request).cached is True
    (ctx / "a.txt").write_text("two\n")
    assert builder.build_request(request).cached is False, "a stale image was reported as cached"
    assert podman("run", "--rm", name, "cat", "/ctx/a.txt").stdout == "two\n"


def test_ignore_syntax_buildah_reads_as_a_regexp_turns_the_skip_off(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """Buildah passes ``+`` to Go's regexp (``a+b`` excludes ab and aab, keeps a+b): that
    is not modelled, so every build runs rather than trust a digest of other files."""
    name = names.new("localhost/rtbuild-test/ignore")
    ctx = write_context(tmp_path / "ctx", COPY_ALL, {"ab": "one\n", ".dockerignore": "a+b\n"})
    request = BuildRequest(path=str(ctx), tags=[name])
    assert builder.build_request(request).cached is False
    assert builder.build_request(request).cached is False
