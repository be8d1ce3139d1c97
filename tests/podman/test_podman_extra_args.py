"""Podman requests beyond the plain ones: extra arguments (``-t`` refused, ``--iidfile``
written by rtbuild, ``-f`` and ``--build-arg`` counted) and a builder kept across requests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _podman_support import Names, isolated_env, podman, write_context
from rtbuild import BuildContextError, BuildRequest, ConfigError
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine]


def test_a_tag_given_as_an_extra_argument_is_refused(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    """``extra_build_args=["-t", OTHER]``: podman tagged OTHER too, but the skip checked only
    the request's tags, so after OTHER was re-tagged the next request reported success."""
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN echo hi > /hello\n")
    other = names.new()
    for extra in (["-t", other], [f"--tag={other}"], [f"-t{other}"]):
        with pytest.raises(ConfigError) as info:
            builder.build_request(BuildRequest(path=str(ctx), tags=[names.new()], extra_build_args=extra))
        assert info.value.hint and "-t" in info.value.hint
    assert podman("image", "exists", other, check=False).returncode == 1


def test_iidfile_holds_the_image_id_after_a_build_and_after_a_skip(names: Names, tmp_path: Path) -> None:
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nCOPY data /data\n", {"data": "one\n"})
    iid = tmp_path / "iid"
    image = names.new()
    rtbuild = str(Path(sys.executable).with_name("rtbuild"))
    argv = [rtbuild, "build", str(ctx), "-t", image, "--builder", "podman", f"--extra=--iidfile={iid}", "-q"]
    env = isolated_env(tmp_path)
    built = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    first = iid.read_text()
    assert first == "sha256:" + podman("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
    iid.unlink()
    skipped = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert skipped.returncode == 0, skipped.stderr
    assert '"cached": true' in skipped.stdout
    assert iid.read_text() == first


def test_a_dockerfile_in_the_extra_arguments_beside_the_requests_is_refused(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """The request's ``dockerfile`` was dropped for a ``-f`` in the extra arguments, silently."""
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\n", {"Other": "FROM busybox:latest\n"})
    request = BuildRequest(path=str(ctx), tags=[names.new()], dockerfile="Dockerfile", extra_build_args=["-f", "Other"])
    with pytest.raises(BuildContextError, match="more than one Dockerfile"):
        builder.build_request(request)


@pytest.mark.parametrize("spelling", ["-f{}", "-f={}"])
def test_a_dockerfile_spelt_fX_reaches_podman_once(
    builder: PodmanBuilder, names: Names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    """``--extra=-fOther`` (or ``-f=Other``): rtbuild hashed CONTEXT/Other and passed it as
    ``-f``, but left ``-fOther`` in podman's arguments too. Podman builds every ``-f``, one
    after the other, reading a relative one from the working directory first: the image
    came from ./Other, which rtbuild never read, and an edit of it was a skip (reproduced)."""
    ctx = write_context(
        tmp_path / "ctx", "FROM busybox:latest\n", {"Other": "FROM busybox:latest\nRUN echo ctx > /m\n"}
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "Other").write_text("FROM busybox:latest\nRUN echo cwd > /m\n")
    monkeypatch.chdir(cwd)
    request = BuildRequest(path=str(ctx), tags=[names.new()], extra_build_args=[spelling.format("Other")])
    builder.build_request(request)
    assert podman("run", "--rm", request.tags[0], "cat", "/m").stdout.strip() == "ctx"
    (ctx / "Other").write_text("FROM busybox:latest\nRUN echo ctx2 > /m\n")
    assert not builder.build_request(request).cached
    assert podman("run", "--rm", request.tags[0], "cat", "/m").stdout.strip() == "ctx2"


def test_a_base_named_by_an_extra_build_arg_is_an_input(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    """As with Docker: a base named through ``--build-arg`` in the extra arguments was no
    input, and a re-tag of it left the skip reusing the image built on the old one."""
    base = names.new("rt-podman-test/base")
    podman("tag", "busybox:latest", base)
    ctx = write_context(tmp_path / "ctx", "ARG BASE=busybox:latest\nFROM $BASE\nRUN ls / > /listing\n")
    request = BuildRequest(path=str(ctx), tags=[names.new()], extra_build_args=[f"--build-arg=BASE={base}"])
    assert builder.build_request(request).cached is False
    assert builder.build_request(request).cached is True
    podman("tag", request.tags[0], base)  # another image (it holds /listing)
    assert builder.build_request(request).cached is False
    assert "listing" in podman("run", "--rm", request.tags[0], "cat", "/listing").stdout.split()


def test_a_builder_kept_across_requests_sees_a_base_re_tagged_after_a_skip(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """The builder cached podman's inspect answers from a skip to the next request (a
    BuildSession keeps one builder): a base re-tagged in between read as the old image."""
    base = names.new("rt-podman-test/base")
    podman("tag", "busybox:latest", base)
    ctx = write_context(tmp_path / "ctx", f"FROM {base}\nRUN ls / > /listing\n")
    request = BuildRequest(path=str(ctx), tags=[names.new()])
    assert builder.build_request(request).cached is False
    assert builder.build_request(request).cached is True
    podman("tag", request.tags[0], base)
    assert builder.build_request(request).cached is False


def test_a_base_given_with_from_always_builds(builder: PodmanBuilder, names: Names, tmp_path: Path) -> None:
    """``--extra=--from=IMAGE``: Buildah builds the first stage on IMAGE instead of the
    Dockerfile's FROM, which the skip read; after IMAGE was re-tagged the next request was
    reported cached, its image built on the old IMAGE (reproduced on podman 4.3.1)."""
    base = names.new("rt-podman-test/from-base")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "Dockerfile").write_text("FROM busybox:latest\nRUN echo one > /mark\n")
    podman("build", "-q", "-t", base, str(tmp_path / "b"))
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN cat /mark > /seen\n")
    request = BuildRequest(path=str(ctx), tags=[names.new()], extra_build_args=[f"--from={base}"])
    builder.build_request(request)
    (tmp_path / "b" / "Dockerfile").write_text("FROM busybox:latest\nRUN echo two > /mark\n")
    podman("build", "-q", "-t", base, str(tmp_path / "b"))
    assert not builder.build_request(request).cached
    assert podman("run", "--rm", request.tags[0], "cat", "/seen").stdout.strip() == "two"


def test_a_manifest_list_or_all_platforms_among_the_extra_arguments_is_refused(
    builder: PodmanBuilder, names: Names, tmp_path: Path
) -> None:
    """``--manifest LIST``: podman printed the list's ID last, which rtbuild reported as the
    image's (``podman manifest rm LIST`` then deleted it), and a skip left the list as it was
    (removed: still missing, the build reported cached). ``--all-platforms`` builds for every
    platform of the base while rtbuild follows the request's. Both are refused, as -t is."""
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nRUN echo hi > /hello\n")
    listed = names.new("rt-podman-test/manifest")
    for extra in (["--manifest", listed], [f"--manifest={listed}"], ["--all-platforms"]):
        with pytest.raises(ConfigError) as info:
            builder.build_request(BuildRequest(path=str(ctx), tags=[names.new()], extra_build_args=extra))
        assert info.value.step == "validate request" and info.value.hint
    assert podman("manifest", "exists", listed, check=False).returncode == 1
