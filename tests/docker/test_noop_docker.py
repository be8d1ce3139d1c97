"""The no-op skip on the real engine: unchanged inputs reuse the image, any change rebuilds."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild import BuildResult

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context


@pytest.fixture
def base_image(docker_engine: str) -> Iterator[str]:
    """A local base image tag the test may re-point at another image ID."""
    name = f"rtbuild-test-base/{uuid.uuid4().hex[:12]}:latest"
    h.docker(docker_engine, "tag", "busybox:latest", name)
    yield name
    h.docker(docker_engine, "image", "rm", "-f", name, check=False)


def test_unchanged_inputs_skip_the_engine(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    tags = [images.tag("a"), images.tag("b")]
    first = h.build(images, context, tags, build_args={"GREETING": "x"}, labels={"l": "1"})
    assert not first.cached and len(h.log_files(isolated_dirs)) == 1
    second = h.build(images, context, tags, build_args={"GREETING": "x"}, labels={"l": "1"})
    assert second.cached and second.image == tags[0]
    assert second.details["image_id"] == first.details["image_id"]
    # No new build log: the engine's build was never invoked.
    assert len(h.log_files(isolated_dirs)) == 1


def _edit_content(ctx: Path) -> None:
    (ctx / "app.txt").write_text("version 2\n")


def _new_file(ctx: Path) -> None:
    (ctx / "new.txt").write_text("new\n")


def _dockerfile(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(h.BUSYBOX_DOCKERFILE + "RUN true\n")


CHANGES: dict[str, tuple[Callable[[Path], None] | None, dict[str, object]]] = {
    "file-content": (_edit_content, {}),
    "new-file": (_new_file, {}),
    "dockerfile": (_dockerfile, {}),
    "build-arg": (None, {"build_args": {"GREETING": "changed"}}),
    "label": (None, {"labels": {"org.example": "changed"}}),
    "platform": (None, {"platform": "linux/amd64"}),
    "extra-arg": (None, {"extra_build_args": ["--network=host"]}),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_changed_input_rebuilds(images: h.Images, context: Path, isolated_dirs: Path, change: str) -> None:
    edit, fields = CHANGES[change]
    assert not h.build(images, context).cached
    assert h.build(images, context).cached
    if edit is not None:
        edit(context)
    rebuilt = h.build(images, context, **fields)  # type: ignore[arg-type]
    assert not rebuilt.cached, f"{change} did not trigger a rebuild"
    assert len(h.log_files(isolated_dirs)) == 2
    assert h.build(images, context, **fields).cached  # type: ignore[arg-type]  # and is stable again


def test_target_change_rebuilds(images: h.Images, context: Path) -> None:
    (context / "Dockerfile").write_text(
        "FROM busybox:latest AS base\nRUN echo base > /s\nFROM base AS app\nRUN echo app > /s\n"
    )
    assert not h.build(images, context).cached
    assert h.build(images, context).cached
    assert not h.build(images, context, target="base").cached
    assert h.build(images, context, target="base").cached


def test_ignored_file_does_not_rebuild(images: h.Images, context: Path) -> None:
    (context / ".dockerignore").write_text("*.log\ncache/\n")
    (context / "debug.log").write_text("1\n")
    assert not h.build(images, context).cached
    (context / "debug.log").write_text("2, longer\n")
    (context / "other.log").write_text("new\n")
    (context / "cache").mkdir()
    (context / "cache" / "blob").write_text("x")
    assert h.build(images, context).cached


def _dockerfile_specific_ignore(context: Path, tmp_path: Path) -> None:
    (context / ".dockerignore").write_text("assets/\n")
    (context / "Dockerfile.dockerignore").write_text("*.md\n")


def _ignore_linked_out(context: Path, tmp_path: Path) -> None:
    (tmp_path / "ignore.txt").write_text("assets/\n")
    (context / ".dockerignore").symlink_to(tmp_path / "ignore.txt")


@pytest.mark.parametrize(
    "setup",
    [
        # BuildKit's client filters by Dockerfile.dockerignore instead of .dockerignore.
        pytest.param(_dockerfile_specific_ignore, id="dockerfile-specific"),
        # BuildKit's client does not follow .dockerignore out of the context (20.10: checked).
        pytest.param(_ignore_linked_out, id="linked-out"),
    ],
)
def test_an_ignore_file_the_client_reads_otherwise_turns_the_skip_off(
    images: h.Images, context: Path, tmp_path: Path, setup: Callable[[Path, Path], None]
) -> None:
    """The client sends assets/ though .dockerignore (as the digest reads it) excludes it:
    an edit there must rebuild."""
    setup(context, tmp_path)
    (context / "assets").mkdir()
    (context / "assets" / "logo.txt").write_text("v1\n")
    tag = images.tag()
    assert not h.build(images, context, [tag]).cached
    (context / "assets" / "logo.txt").write_text("v2\n")
    assert not h.build(images, context, [tag]).cached
    assert h.docker(images.cli, "run", "--rm", tag, "cat", "/ctx/assets/logo.txt").stdout == "v2\n"


@pytest.mark.parametrize(
    "template",
    [
        "ARG BASE={base}\nFROM $BASE\nCOPY app.txt /\n",
        # A byte-order mark (Windows editors write one) and an empty line inside a continued
        # FROM: the engines skip both, and so must the analysis, or the base goes unseen.
        pytest.param("\ufeffARG BASE={base}\nFROM $BASE\nCOPY app.txt /\n", id="byte-order-mark"),
        pytest.param("FROM \\\n\n  {base}\nCOPY app.txt /\n", id="empty-line-in-continued-from"),
        # A default in the reference: the analysis named no image, and every build failed
        # (the engine answered 301 to an inspect of the empty name).
        pytest.param("ARG BASE\nFROM ${{BASE:-{base}}}\nCOPY app.txt /\n", id="default-in-reference"),
        pytest.param("ARG PIN=1\nFROM ${{PIN:+{base}}}\nCOPY app.txt /\n", id="alternative-in-reference"),
    ],
)
def test_from_image_retagged_rebuilds(
    images: h.Images, context: Path, base_image: str, tmp_path: Path, template: str
) -> None:
    (context / "Dockerfile").write_text(template.format(base=base_image), encoding="utf-8")
    assert not h.build(images, context).cached
    assert h.build(images, context).cached
    other = tmp_path / "other"
    other.mkdir()
    (other / "Dockerfile").write_text("FROM busybox:latest\nRUN echo other > /other\n")
    h.docker(images.cli, "build", "-q", "-t", base_image, str(other))
    rebuilt = h.build(images, context)
    assert not rebuilt.cached
    assert h.build(images, context).cached
    h.docker(images.cli, "image", "rm", "-f", base_image)  # retag to busybox: the old ID again
    h.docker(images.cli, "tag", "busybox:latest", base_image)
    assert not h.build(images, context).cached


def test_missing_or_foreign_tag_is_pointed_at_the_current_image(
    images: h.Images, context: Path, docker_engine: str, isolated_dirs: Path
) -> None:
    # The engine would build the very image tags[0] names: the tag is put back, not rebuilt
    # (test_partial_tags_docker.py has the cases where no tag is current).
    tags = [images.tag("a"), images.tag("b")]
    first = h.build(images, context, tags)
    assert not first.cached
    h.docker(docker_engine, "image", "rm", tags[1])
    result = h.build(images, context, tags)
    assert result.cached
    assert (h.inspect(docker_engine, tags[1]) or {}).get("Id") == first.details["image_id"]
    h.docker(docker_engine, "tag", "busybox:latest", tags[1])  # same name, other image
    assert h.build(images, context, tags).cached
    assert (h.inspect(docker_engine, tags[1]) or {}).get("Id") == first.details["image_id"]
    assert len(h.log_files(isolated_dirs)) == 1  # one engine build in all


def test_force_bypasses_the_skip(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    assert not h.build(images, context).cached
    forced: BuildResult = h.build(images, context, force=True)
    assert not forced.cached and len(h.log_files(isolated_dirs)) == 2
    assert h.build(images, context).cached  # the forced build carries the digest label too


def test_secret_args_always_build(images: h.Images, context: Path, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t")
    # The built-in frontend knows secret mounts (no `# syntax` image can be pulled here).
    (context / "Dockerfile").write_text(
        'FROM busybox:latest\nRUN --mount=type=secret,id=tok test "$(cat /run/secrets/tok)" = s3cr3t\n'
    )
    args = ["--secret", f"id=tok,src={secret}"]
    assert not h.build(images, context, extra_build_args=args).cached
    assert not h.build(images, context, extra_build_args=args).cached


def test_cli_reports_cached(images: h.Images, context: Path) -> None:
    assert h.cli_build(str(context), "-t", images.tag(), "--json").returncode == 0
    proc = h.cli_build(str(context), "-t", images.tag(), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cached"] is True
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert any(event["event"] == "cached" for event in events)
    assert not any(event["event"] == "log" for event in events)
    proc = h.cli_build(str(context), "-t", images.tag(), "--json", "--no-cache")
    assert json.loads(proc.stdout)["cached"] is False
