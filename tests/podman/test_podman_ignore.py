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


def _layer_xattr(name: str, tmp_path: Path) -> str | None:
    """user.x of /ctx/f as the image's top layer carries it (a `podman save` archive)."""
    import io
    import json
    import tarfile

    archive = tmp_path / f"saved-{len(list(tmp_path.glob('saved-*')))}.tar"  # save will not overwrite
    podman("save", "-o", str(archive), name)
    with tarfile.open(archive) as saved:
        manifest = saved.extractfile("manifest.json")
        assert manifest is not None
        top = saved.extractfile(json.load(manifest)[0]["Layers"][-1])
        assert top is not None
        with tarfile.open(fileobj=io.BytesIO(top.read())) as layer:
            return layer.getmember("ctx/f").pax_headers.get("SCHILY.xattr.user.x")


def test_an_xattr_change_alone_reaches_the_pushed_layer(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    """Buildah copies a context file's user.* attributes into the layer archive (what a push
    sends): an attribute-only change (setfattr moves ctime alone) must build again, or the
    image keeps the old value under a digest that claims the new one."""
    import os

    name = names.new("localhost/rtbuild-test/xattr")
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nCOPY f /ctx/f\n", {"f": "f\n"})
    try:
        os.setxattr(ctx / "f", "user.x", b"1")
    except OSError as exc:
        pytest.fail(f"the test's filesystem refuses user xattrs: {exc}", pytrace=False)
    request = BuildRequest(path=str(ctx), tags=[name])
    assert builder.build_request(request).cached is False
    assert _layer_xattr(name, tmp_path) == "1"
    os.setxattr(ctx / "f", "user.x", b"2")
    assert builder.build_request(request).cached is False, "an attribute change was reported cached"
    assert _layer_xattr(name, tmp_path) == "2"
    assert builder.build_request(request).cached is True
