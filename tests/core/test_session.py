"""BuildSession: resident no-ops answer from an inotify watch, and every change is seen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import rtbuild
from rtbuild import BuildRequest, BuildResult, BuildSession, Config, RuntimeBuilder
from rtbuild.context import context_digest


class DigestBuilder(RuntimeBuilder):
    """Builds "images" as records of the context digest; an equal digest is a no-op."""

    name = "digest"
    capabilities = rtbuild.BuilderCapabilities()

    def __init__(self) -> None:
        self.images: dict[str, str] = {}
        self.builds = 0

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        raise AssertionError("build_request is the entry point")

    def build_request(self, request: BuildRequest) -> BuildResult:
        digest = context_digest(request.path).digest
        cached = all(self.images.get(tag) == digest for tag in request.tags)
        if not cached:
            self.builds += 1
            for tag in request.tags:
                self.images[tag] = digest
        return BuildResult(request.tags[0], list(request.tags), self.name, 0.0, cached=cached)

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        return image_name in self.images


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BuildSession:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = Config(load_plugins=[])
    return BuildSession(config, pm=rtbuild.get_plugin_manager(config), builder=DigestBuilder())


def _build(session: BuildSession, context: Path) -> BuildResult:
    return session.build(BuildRequest(path=str(context), tags=["app:1"], builder="digest"))


def test_unchanged_context_answers_from_the_watch(session: BuildSession, context: Path) -> None:
    assert not _build(session, context).cached
    assert session.stats() == {"resident_hits": 0, "walks": 1, "label_checks_watched": 0}
    for _ in range(3):
        assert _build(session, context).cached
    assert session.stats() == {"resident_hits": 3, "walks": 1, "label_checks_watched": 0}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: (c / "app.py").write_text("changed"), id="edit"),
        pytest.param(lambda c: os.chmod(c / "app.py", 0o755), id="chmod"),
        pytest.param(lambda c: (c / "app.py").rename(c / "main.py"), id="rename"),
        pytest.param(lambda c: (c / "app.py").unlink(), id="delete"),
        pytest.param(
            lambda c: (c / "new" / "deep").mkdir(parents=True) or (c / "new/deep/x").write_text("x"), id="new-dir"
        ),
        pytest.param(lambda c: (c / ".dockerignore").write_text("*.py\n"), id="dockerignore"),
        pytest.param(lambda c: (c / "Dockerfile").write_text("FROM other\n"), id="dockerfile"),
    ],
)
def test_every_change_is_seen(session: BuildSession, context: Path, change: object) -> None:
    (context / "app.py").write_text("original")
    first = _build(session, context)
    assert not first.cached and _build(session, context).cached
    change(context)  # type: ignore[operator]
    after = _build(session, context)
    assert not after.cached, "a changed context was reported unchanged"
    assert session.stats()["walks"] == 2


def test_a_file_in_a_new_directory_changed_later_is_seen(session: BuildSession, context: Path) -> None:
    _build(session, context)
    (context / "pkg").mkdir()
    (context / "pkg" / "mod.py").write_text("v1")
    assert not _build(session, context).cached  # the new dir is walked and then watched
    assert _build(session, context).cached
    (context / "pkg" / "mod.py").write_text("v2")
    assert not _build(session, context).cached


def test_a_directory_created_while_the_watch_is_set_up_is_watched(
    context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race between listing a directory and watching it: a subdirectory created in
    between must still be watched, or a later write inside it would go unseen."""
    from rtbuild.context import _watch

    real_scandir = os.scandir
    created: list[Path] = []

    class ListThenMkdir:
        """The root's listing, with a subdirectory created the moment it is complete."""

        def __init__(self, path: str) -> None:
            self.path = path
            self.listing = real_scandir(path)

        def __enter__(self) -> object:
            return self.listing.__enter__()

        def __exit__(self, *exc: object) -> None:
            self.listing.__exit__(*exc)  # type: ignore[arg-type]
            if not created and os.path.samefile(self.path, context):
                created.append(context / "raced")
                created[0].mkdir()

    watch = _watch.ContextWatch(str(context))
    try:
        start = watch.generation
        monkeypatch.setattr(_watch.os, "scandir", ListThenMkdir)
        watch.rewatch()
        monkeypatch.undo()
        assert created, "the race was not staged"
        (created[0] / "later.py").write_text("written after the watch was set up")
        assert watch.generation != start, "a change inside the raced directory went unseen"
    finally:
        watch.close()


def test_a_watch_finds_libc_without_running_ldconfig(context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """inotify_simple's own libc lookup (ctypes.util.find_library) spawns `ldconfig -p`
    before the first watch of every process: the watch must not need it, and must still
    see changes with the libc it loads instead."""
    import inotify_simple
    from rtbuild.context import _watch

    def no_ldconfig(name: str) -> str:
        raise AssertionError(f"find_library({name!r}) ran: it spawns ldconfig")

    monkeypatch.setattr(inotify_simple, "_libc", None)
    monkeypatch.setattr(inotify_simple, "find_library", no_ldconfig)
    watch = _watch.ContextWatch(str(context))
    try:
        watch.rewatch()
        start = watch.generation
        (context / "new.py").write_text("seen?")
        assert watch.generation != start, "the watch saw no change"
    finally:
        watch.close()


def test_a_closed_session_refuses_to_build(session: BuildSession, context: Path) -> None:
    session.close()
    with pytest.raises(rtbuild.ConfigError, match="closed") as info:
        _build(session, context)
    assert info.value.hint and "new" in info.value.hint


def test_a_digest_asked_after_close_walks_and_leaves_no_watch(context: Path) -> None:
    """A call still running when the session closes (another thread) must not start a
    watch that nobody will close: its inotify descriptors would live as long as the process."""
    from rtbuild.context import hash_context
    from rtbuild.context._resident import ResidentDigests

    digests = ResidentDigests()
    digests.close()
    expected = hash_context(str(context)).digest  # first: what a walk opens once per process is not counted
    before = len(os.listdir("/proc/self/fd"))
    result = digests.digest(str(context), str(context / "Dockerfile"), lambda: hash_context(str(context)))
    assert result.digest == expected
    assert digests.walks == 1 and len(os.listdir("/proc/self/fd")) == before


# --- trying to fool it -------------------------------------------------------------------


def _fresh_digest(context: Path) -> str:
    """The ground truth: a walk that reads every file, outside any session."""
    return context_digest(str(context), use_cache=False).digest


def _image(session: BuildSession) -> str:
    builder = session.builder("digest")
    assert isinstance(builder, DigestBuilder)
    return builder.images["app:1"]


class ChangingBuilder(DigestBuilder):
    """Edits the context while its "engine" builds, after the digest was taken."""

    def __init__(self) -> None:
        super().__init__()
        self.during: list[object] = []

    def build_request(self, request: BuildRequest) -> BuildResult:
        result = super().build_request(request)
        while self.during:
            self.during.pop()()  # type: ignore[operator]
        return result


def test_a_change_during_the_build_leaves_no_digest_claiming_it(tmp_path: Path, context: Path) -> None:
    config = Config(load_plugins=[])
    builder = ChangingBuilder()
    with BuildSession(config, pm=rtbuild.get_plugin_manager(config), builder=builder) as session:
        (context / "app.py").write_text("v1")
        before = _fresh_digest(context)
        builder.during.append(lambda: (context / "app.py").write_text("v2"))
        assert not _build(session, context).cached
        assert builder.images["app:1"] == before  # the image holds v1, as its digest says
        after = _build(session, context)
        assert not after.cached, "the v2 content was answered from the watch"
        assert builder.images["app:1"] == _fresh_digest(context) != before
        assert _build(session, context).cached


def test_a_file_changed_between_two_questions_in_one_build(session: BuildSession, context: Path) -> None:
    _build(session, context)
    with rtbuild.context._resident.resident(session.digests):  # type: ignore[arg-type]
        first = context_digest(str(context)).digest
        (context / "late.txt").write_text("written mid-build")
        assert context_digest(str(context)).digest == _fresh_digest(context) != first


def test_inotify_queue_overflow_falls_back_to_the_walk(session: BuildSession, context: Path) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    (context / "a").write_text("a")
    (context / "b").write_text("b")
    _build(session, context)
    assert _build(session, context).cached
    # Alternate two files (identical consecutive events would be merged into one) until
    # the kernel's queue for this watch overflows; one real edit hides among them.
    for index in range(limit + 1000):
        os.chmod(context / ("a" if index % 2 else "b"), 0o644 if index % 4 < 2 else 0o600)
        if index == limit // 4:
            (context / "a").write_text("edited under the flood")
    os.chmod(context / "a", 0o644)
    os.chmod(context / "b", 0o644)
    assert not _build(session, context).cached
    assert _image(session) == _fresh_digest(context)
    watch = session.digests._watches[str(context)]  # type: ignore[union-attr]
    assert watch is not None and watch.overflows >= 1
    hits = session.stats()["resident_hits"]
    assert _build(session, context).cached
    assert session.stats()["resident_hits"] == hits + 1  # watching again after the walk


def test_a_symlinked_directory_is_followed_as_docker_sends_it(
    session: BuildSession, context: Path, tmp_path: Path
) -> None:
    outside, other = tmp_path / "outside", tmp_path / "other"
    outside.mkdir()
    other.mkdir()
    (outside / "lib.py").write_text("outside")
    (context / "lib").symlink_to(outside, target_is_directory=True)
    _build(session, context)
    # Docker sends the link, not what it points to: edits behind it change nothing...
    (outside / "lib.py").write_text("edited behind the link")
    assert _build(session, context).cached
    assert _image(session) == _fresh_digest(context)
    # ...but pointing it elsewhere does.
    (context / "lib").unlink()
    (context / "lib").symlink_to(other, target_is_directory=True)
    assert not _build(session, context).cached
    assert _image(session) == _fresh_digest(context)


def test_a_context_path_through_a_symlink_re_pointed(session: BuildSession, tmp_path: Path) -> None:
    one, two, link = tmp_path / "one", tmp_path / "two", tmp_path / "current"
    for directory, text in ((one, "one"), (two, "two")):
        directory.mkdir()
        (directory / "Dockerfile").write_text("FROM scratch\n")
        (directory / "app.py").write_text(text)
    link.symlink_to(one, target_is_directory=True)
    _build(session, link)
    assert _build(session, link).cached
    tmp = tmp_path / "current.tmp"
    tmp.symlink_to(two, target_is_directory=True)
    tmp.replace(link)  # atomic re-point, as deploy tools do
    assert not _build(session, link).cached
    assert _image(session) == _fresh_digest(two)
    assert _build(session, link).cached


@pytest.mark.parametrize("moved", ["context", "parent"])
def test_the_context_directory_replaced(session: BuildSession, tmp_path: Path, moved: str) -> None:
    parent = tmp_path / "parent"
    context = parent / "ctx"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    (context / "app.py").write_text("old")
    _build(session, context)
    assert _build(session, context).cached
    away = context if moved == "context" else parent
    away.rename(tmp_path / "moved-away")
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    (context / "app.py").write_text("new")
    assert not _build(session, context).cached
    assert _image(session) == _fresh_digest(context)
    assert _build(session, context).cached
    (tmp_path / "moved-away" / ("app.py" if moved == "context" else "ctx/app.py")).write_text("edit the old one")
    assert _build(session, context).cached  # the old directory's events do not matter...
    (context / "app.py").write_text("newer")
    assert not _build(session, context).cached  # ...and the new one is watched


_NON_LOCAL_SCRIPT = """
import sys
import rtbuild
from rtbuild import BuildSession, Config
from rtbuild.context import context_digest
from rtbuild.context._resident import resident

config = Config(load_plugins=[])
with BuildSession(config, pm=rtbuild.get_plugin_manager(config)) as session:
    with resident(session.digests):
        first = context_digest(sys.argv[1]).digest
        open(sys.argv[1] + "/app.py", "w").write("changed")
        second = context_digest(sys.argv[1]).digest
    print(first != second, session.stats()["walks"], session.digests.why_not_watched(sys.argv[1]))
"""


def test_a_context_on_a_filesystem_inotify_cannot_vouch_for_is_walked(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root and unshare(1) (a private mount namespace) under CI")
        pytest.skip("needs root and unshare(1)")
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = tmp_path / "check.py"
    script.write_text(_NON_LOCAL_SCRIPT)
    # ramfs stands in for NFS, FUSE, 9p...: a filesystem type not on the local list.
    shell = (
        f"mount -t ramfs none {mount} && printf 'FROM scratch\\n' > {mount}/Dockerfile && "
        f"echo v1 > {mount}/app.py && {sys.executable} {script} {mount}"
    )
    proc = subprocess.run(["unshare", "--mount", "sh", "-c", shell], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    changed, walks, why = proc.stdout.strip().split(" ", 2)
    assert changed == "True" and walks == "2"
    assert "ramfs is not watched" in why


_MOUNT_INSIDE_SCRIPT = """
import sys
import rtbuild
from rtbuild import BuildSession, Config
from rtbuild.context import context_digest
from rtbuild.context._resident import resident

config = Config(load_plugins=[])
with BuildSession(config, pm=rtbuild.get_plugin_manager(config)) as session:
    with resident(session.digests):
        digests = {context_digest(sys.argv[1]).digest for _ in range(3)}
    print(len(digests), session.stats()["walks"], session.digests.why_not_watched(sys.argv[1]))
"""


def test_a_context_holding_a_mount_inotify_cannot_vouch_for_is_walked(tmp_path: Path) -> None:
    """A local context with an NFS or FUSE directory mounted inside it: writes made on the
    server (or behind the FUSE daemon) raise no event here, yet the session answered every
    question from its watch, because only the root's filesystem was checked."""
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root and unshare(1) (a private mount namespace) under CI")
        pytest.skip("needs root and unshare(1)")
    context = tmp_path / "ctx"
    (context / "data").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    script = tmp_path / "check.py"
    script.write_text(_MOUNT_INSIDE_SCRIPT)
    # ramfs stands in for NFS, FUSE, 9p...: a filesystem type not on the local list.
    shell = f"mount -t ramfs none {context}/data && echo v1 > {context}/data/x && {sys.executable} {script} {context}"
    proc = subprocess.run(["unshare", "--mount", "sh", "-c", shell], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    distinct, walks, why = proc.stdout.strip().split(" ", 2)
    assert distinct == "1" and walks == "3", proc.stdout  # every question walked, none from the watch
    assert f"{context}/data inside the context is ramfs" in why, why


def test_a_dockerfile_reached_through_a_link_outside_the_context(session: BuildSession, tmp_path: Path) -> None:
    """Dockerfile -> a link outside the context -> a file inside it: re-pointing that link
    raises no event in the context, yet changes the Dockerfile the client reads."""
    context = tmp_path / "linked"
    context.mkdir()
    (context / "Dockerfile.a").write_text("FROM scratch\n")
    (context / "Dockerfile.b").write_text("FROM busybox\n")
    hop = tmp_path / "hop"
    hop.symlink_to(context / "Dockerfile.a")
    (context / "Dockerfile").symlink_to(hop)
    assert not _build(session, context).cached
    assert _build(session, context).cached  # it ends inside the context: answered from the watch
    hop.unlink()
    hop.symlink_to(context / "Dockerfile.b")
    assert not _build(session, context).cached, "the re-pointed link was not seen"
    assert _image(session) == _fresh_digest(context)
    hop.unlink()
    hop.symlink_to(context / "Dockerfile.a")
    assert not _build(session, context).cached
    assert _image(session) == _fresh_digest(context)


def test_digests_made_for_another_ignore_dialect_are_kept_apart(context: Path) -> None:
    """One session may hash a context for a 20.10 client and for a 23+ one (or Podman):
    the dialects can send different files, so neither answers for the other."""
    digests = rtbuild.context._resident.ResidentDigests()
    try:
        dockerfile = str(context / "Dockerfile")
        assert digests.digest(str(context), dockerfile, lambda: "old client", "moby20") == "old client"
        assert digests.digest(str(context), dockerfile, lambda: "new client", "moby23") == "new client"
        assert digests.digest(str(context), dockerfile, lambda: "walked again", "moby20") == "old client"
        assert (digests.walks, digests.hits) == (2, 1)
    finally:
        digests.close()


def test_the_label_check_after_a_rebuild_is_answered_by_the_watch(
    context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``changed_since_walk`` (the label check after an engine read) of a digest the
    session's watch vouches for lists nothing while the watch saw no event; after any
    event, even an edit written back, it lists and finds the change; a closed watch lists."""
    from rtbuild.context import _snapshot
    from rtbuild.context._resident import ResidentDigests, resident

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    listed: list[str] = []
    real = _snapshot._listings

    def counted(root: str, matcher: object) -> object:
        listed.append(root)
        return real(root, matcher)  # type: ignore[arg-type]

    monkeypatch.setattr(_snapshot, "_listings", counted)
    (context / "app.py").write_text("v1")
    digests = ResidentDigests()
    try:
        with resident(digests):
            hashed = context_digest(str(context))
            assert context_digest(str(context)) is hashed  # the memoised digest, unwalked
        assert hashed.changed_since_walk() is None
        assert listed == [] and digests.vouched == 1
        (context / "app.py").write_text("v2")
        (context / "app.py").write_text("v1")  # written back: the bytes hash as before
        assert hashed.changed_since_walk() == "app.py"
        assert len(listed) == 1 and digests.vouched == 1
    finally:
        digests.close()
    with resident(ResidentDigests()) as fresh:
        rehashed = context_digest(str(context))
        fresh.close()  # a closed (broken) watch cannot vouch: the listings are compared
    assert rehashed.changed_since_walk() is None
    assert len(listed) == 2 and fresh.vouched == 0


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: f.write_text("changed"), id="edit"),
        pytest.param(lambda f: os.chmod(f, 0o755), id="chmod"),
    ],
)
def test_a_hard_linked_file_changed_through_its_name_outside_the_context(
    session: BuildSession, context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: object
) -> None:
    """inotify reports a write to the directory it went through: one through a hard link's
    other name, outside the context, raised no event, and the session answered "unchanged"
    for a context whose file now held other content (a stale image)."""
    import time

    import rtbuild.context._hashing
    import rtbuild.context._snapshot

    window_ns = 200_000_000  # the racy window, shortened so the test need not wait 2 s
    monkeypatch.setattr(rtbuild.context._snapshot, "RACY_NS", window_ns)
    monkeypatch.setattr(rtbuild.context._hashing, "_RACY_NS", window_ns)
    (context / "app.py").write_text("original")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.link(context / "app.py", outside / "app.py")
    time.sleep(window_ns / 1e9 + 0.05)
    assert not _build(session, context).cached
    assert _build(session, context).cached
    assert session.stats()["resident_hits"] == 1  # an untouched linked file: still answered unwalked
    change(outside / "app.py")  # type: ignore[operator]
    assert not _build(session, context).cached, "a changed context was reported unchanged"
    assert session.stats()["walks"] == 2


def test_a_hard_linked_file_written_just_before_the_walk_is_stat_checked_by_a_walk(
    session: BuildSession, context: Path, tmp_path: Path
) -> None:
    """Written within the racy window of the walk, a linked file's stat key cannot tell a
    second write in the same timestamp tick: until it settles, every question walks."""
    (context / "app.py").write_text("original")
    os.link(context / "app.py", tmp_path / "app-elsewhere.py")
    assert not _build(session, context).cached
    assert _build(session, context).cached  # unchanged: the walk says so, not the watch
    assert session.stats()["resident_hits"] == 0 and session.stats()["walks"] == 2
