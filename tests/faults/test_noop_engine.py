"""The no-op skip is never wrong, on the real engine: the file set the digest covers is the
one the engine receives, remote sources rebuild, a change BuildKit's sync would miss
reaches the image, and the label is keyed."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker_build_helpers as h
import pytest
from rtbuild import Config
from rtbuild._framework.progress import use_reporter
from rtbuild.context._validate import context_digest
from rtbuild_docker.builder import DockerBuilder

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
OLD = 1_600_000_000


def run_in(cli: str, image: str, *command: str) -> str:
    return h.docker(cli, "run", "--rm", "--network=none", image, *command).stdout


def test_digest_files_are_exactly_what_the_engine_receives(images: h.Images, context: Path) -> None:
    """File by file, for the client rtbuild drives here, with patterns whose meaning
    differs between docker 20.10 and 23+ (``**.txt``, ``**/name`` below its depth)."""
    files = [
        "a.txt",
        ".txt",
        "sub/.txt",
        "sub/b.txt",
        "x/a/b/c",
        "x/a/b/d",
        "b/c",
        "keep/me.log",
        "drop.log",
        "deep/er/e.tmp",
        "deep/er/f.py",
        "pkg/__pycache__/m.pyc",
        "notes/n.md",
    ]
    for rel in files:
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        (context / rel).write_text(rel)
    (context / ".dockerignore").write_text(
        "**.txt\n**/b\n*.log\n!keep/me.log\n**/*.tmp\n**/__pycache__\nnotes\n!notes/n.md\n"
    )
    (context / "Dockerfile").write_text(
        "FROM busybox:latest\nCOPY . /ctx\nRUN cd /ctx && find . -type f | sed 's|^./||' | sort > /files\n"
    )
    h.build(images, context)
    engine_files = set(run_in(images.cli, images.tag(), "cat", "/files").split())
    builder = DockerBuilder.from_config(Config())
    ours = context_digest(str(context), flavor=builder.ignore_flavor(), collect_paths=True)
    assert ours.paths is not None
    our_files = {rel for rel, kind in ours.paths if kind == "f"} | {"Dockerfile", ".dockerignore"}
    assert our_files == engine_files | {"Dockerfile", ".dockerignore"}
    assert ours.ignore_exact


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server for ``ADD <url>`` (BuildKit fetches from the daemon's namespace)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "remote.txt").write_text("remote 1\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/remote.txt", root
    server.shutdown()


def test_add_url_is_never_skipped(images: h.Images, context: Path, served: tuple[str, Path]) -> None:
    url, root = served
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nADD {url} /remote.txt\n")
    first = h.build(images, context)
    assert not first.cached and digest_label_absent(images)
    (root / "remote.txt").write_text("remote 2\n")
    second = h.build(images, context)
    assert not second.cached
    assert run_in(images.cli, images.tag(), "cat", "/remote.txt") == "remote 2\n"


def digest_label_absent(images: h.Images) -> bool:
    info = h.inspect(images.cli, images.tag())
    assert info is not None
    return "org.rtbuild.input-digest" not in (info["Config"]["Labels"] or {})


def test_same_size_change_with_mtime_set_back_reaches_the_image(images: h.Images, context: Path) -> None:
    """BuildKit's sync compares size and mtime: without the fresh sync the image would keep
    "aaaa" and carry the new digest, and every later run would skip."""
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY data.txt /data.txt\n")
    data = context / "data.txt"
    data.write_text("aaaa\n")
    os.utime(data, (OLD, OLD))
    h.build(images, context)
    assert run_in(images.cli, images.tag(), "cat", "/data.txt") == "aaaa\n"
    data.write_text("bbbb\n")
    os.utime(data, (OLD, OLD))
    second = h.build(images, context)
    assert not second.cached
    assert run_in(images.cli, images.tag(), "cat", "/data.txt") == "bbbb\n"
    third = h.build(images, context)
    assert third.cached and third.details["image_id"] == second.details["image_id"]


def _built_then_rewritten(images: h.Images, context: Path, dockerfile: str, before: str, after: str) -> None:
    """Build with data.txt holding ``before``, then rewrite it to ``after`` (the same size)
    and put its old mtime back, as `cp -p`/`tar x`/`rsync -a` do."""
    (context / "Dockerfile").write_text(dockerfile)
    data = context / "data.txt"
    data.write_text(before)
    os.utime(data, (OLD, OLD))
    h.build(images, context)
    data.write_text(after)
    os.utime(data, (OLD, OLD))


def test_an_invisible_change_seen_by_another_command_first_still_reaches_the_image(
    images: h.Images, context: Path
) -> None:
    """The walk that sees a same-size rewrite with its mtime set back stores the new stat
    keys, so the next walk cannot see it again: when `rtbuild context` (or another
    backend) walked first, the build must still send every file."""
    from rtbuild.context import context_digest

    _built_then_rewritten(images, context, "FROM busybox:latest\nCOPY data.txt /data.txt\n", "eeee\n", "ffff\n")
    assert context_digest(str(context)).stat_invisible == ["data.txt"]  # as `rtbuild context` walks
    second = h.build(images, context)
    assert not second.cached
    assert run_in(images.cli, images.tag(), "cat", "/data.txt") == "ffff\n"


def test_after_a_fresh_sync_the_next_ordinary_build_keeps_the_new_bytes(images: h.Images, context: Path) -> None:
    """The fresh sync sends every file; the engine's copy under the usual build node still
    holds the old bytes of the rewritten file, with the same size and mtime as the new:
    the next build, after an ordinary edit elsewhere, must not bring them back."""
    _built_then_rewritten(images, context, "FROM busybox:latest\nCOPY . /c/\n", "gggg\n", "hhhh\n")
    h.build(images, context)
    assert run_in(images.cli, images.tag(), "cat", "/c/data.txt") == "hhhh\n"
    (context / "other.txt").write_text("an ordinary edit\n")
    third = h.build(images, context)
    assert not third.cached
    assert run_in(images.cli, images.tag(), "cat", "/c/data.txt") == "hhhh\n", "the old bytes came back"


def test_an_invisible_change_seen_during_a_first_build_is_built_again_whole(
    images: h.Images, context: Path, isolated_dirs: Path
) -> None:
    """No tag: the engine starts at once and the hash, alongside it, sees the rewrite. That
    engine build received the context incrementally and kept the old bytes (reproduced:
    reported built, the image held "iiii"): it must not be what the tag names. The build
    runs again with the whole context, and later builds keep the new bytes."""
    from rtbuild.context import stale_sync_marker

    _built_then_rewritten(images, context, "FROM busybox:latest\nCOPY . /c/\n", "iiii\n", "jjjj\n")
    h.docker(images.cli, "image", "rm", "-f", images.tag())
    events = h.Events()
    with use_reporter(events):
        first = h.build(images, context)  # a first build: the hash runs next to the engine
    assert not first.cached
    assert run_in(images.cli, images.tag(), "cat", "/c/data.txt") == "jjjj\n"
    rebuilt = [fields for kind, fields in events.events if kind == "fresh_sync_rebuild"]
    assert len(rebuilt) == 1 and rebuilt[0]["files"] == ["data.txt"], events.events
    assert not stale_sync_marker(str(context)).exists()  # the whole-context send cleared it
    (context / "other.txt").write_text("an ordinary edit\n")
    h.build(images, context)
    assert run_in(images.cli, images.tag(), "cat", "/c/data.txt") == "jjjj\n"


def test_lost_stat_cache_after_an_invisible_change_still_rebuilds_right(
    images: h.Images, context: Path, isolated_dirs: Path
) -> None:
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY data.txt /data.txt\n")
    data = context / "data.txt"
    data.write_text("cccc\n")
    os.utime(data, (OLD, OLD))
    h.build(images, context)
    data.write_text("dddd\n")
    os.utime(data, (OLD, OLD))
    for cached in (isolated_dirs / "XDG_CACHE_HOME" / "rtbuild" / "context").iterdir():
        cached.unlink()  # rtbuild forgot what it saw: only the tag's label says a build happened
    h.build(images, context)
    assert run_in(images.cli, images.tag(), "cat", "/data.txt") == "dddd\n"


def test_label_is_keyed_by_the_host_key(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    first = h.build(images, context, build_args={"GREETING": "x"})
    label = first.details["input_digest"]
    assert label.startswith("k1:")
    key = isolated_dirs / "XDG_STATE_HOME" / "rtbuild" / "digest.key"
    assert key.is_file()
    key.write_bytes(os.urandom(32))  # another host (or a rotated key): nothing matches
    second = h.build(images, context, build_args={"GREETING": "x"})
    assert not second.cached and second.details["input_digest"] != label


def test_a_change_between_the_hash_and_the_engine_read_withdraws_the_label(
    images: h.Images, context: Path, edited_meanwhile: Callable[..., Any]
) -> None:
    """A rebuild hashes, then the engine reads: a file edited in between reaches the image
    under the digest of the old bytes. Once the edit is undone, that digest is the
    context's again, and without the withdrawal the next build would reuse the image
    holding the edit."""
    import rtbuild.enginekit

    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY data.txt /data.txt\n")
    data = context / "data.txt"
    data.write_text("one\n")
    h.build(images, context)
    data.write_text("two\n")  # an ordinary rebuild: the tag exists, its digest differs
    # After the hash of "two", before the engine reads; then written back, so the context
    # hashes as "two" again.
    with edited_meanwhile(rtbuild.enginekit, "run_build", data, "meanwhile\n", "two\n"):
        raced = h.build(images, context)
    assert not raced.cached
    assert raced.details.get("input_digest") is None  # the result does not claim it either
    assert run_in(images.cli, images.tag(), "cat", "/data.txt") == "meanwhile\n"
    again = h.build(images, context)
    assert not again.cached, "the image holding 'meanwhile' was reused for 'two'"
    assert run_in(images.cli, images.tag(), "cat", "/data.txt") == "two\n"
    assert h.build(images, context).cached  # and a clean build's label is trusted again


def test_in_a_session_the_watch_answers_the_label_check_and_a_race_still_withdraws(
    images: h.Images, context: Path, edited_meanwhile: Callable[..., Any]
) -> None:
    """A BuildSession's rebuild asks its watch instead of listing the context again: a
    clean rebuild is labelled without a second walk, and the same race as above (an edit
    between the hash and the engine's read, written back) still withdraws the label."""
    import rtbuild
    import rtbuild.enginekit

    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY data.txt /data.txt\n")
    data = context / "data.txt"
    data.write_text("one\n")
    tag = images.tag()
    with rtbuild.BuildSession(Config()) as session:

        def build() -> rtbuild.BuildResult:
            return images.remember(session.build(rtbuild.BuildRequest(path=str(context), tags=[tag])))

        build()
        data.write_text("two\n")
        clean = build()
        assert not clean.cached and clean.details.get("input_digest")
        assert session.stats()["label_checks_watched"] == 1
        assert build().cached
        data.write_text("three\n")
        with edited_meanwhile(rtbuild.enginekit, "run_build", data, "meanwhile\n", "three\n"):
            raced = build()
        assert not raced.cached and raced.details.get("input_digest") is None
        assert session.stats()["label_checks_watched"] == 1  # the events made it list
        assert run_in(images.cli, tag, "cat", "/data.txt") == "meanwhile\n"
        again = build()
        assert not again.cached, "the image holding 'meanwhile' was reused for 'three'"
        assert run_in(images.cli, tag, "cat", "/data.txt") == "three\n"


def test_an_onbuild_add_url_in_the_base_image_is_never_skipped(
    images: h.Images, context: Path, served: tuple[str, Path]
) -> None:
    """The child's Dockerfile fetches nothing itself; its base's ``ONBUILD ADD <url>`` does,
    on every build of the child."""
    url, root = served
    base = context / "base"
    base.mkdir()
    (base / "Dockerfile").write_text(f"FROM busybox:latest\nONBUILD ADD {url} /remote.txt\n")
    base_tag = images.tag() + "-base"
    h.build(images, base, [base_tag])
    child = context / "child"
    child.mkdir()
    (child / "Dockerfile").write_text(f"FROM {base_tag}\n")
    first = h.build(images, child)
    assert not first.cached
    assert run_in(images.cli, images.tag(), "cat", "/remote.txt") == "remote 1\n"
    (root / "remote.txt").write_text("remote 2\n")
    second = h.build(images, child)
    assert not second.cached, "the base's ONBUILD ADD <url> fetched nothing new"
    assert run_in(images.cli, images.tag(), "cat", "/remote.txt") == "remote 2\n"
