"""BuildSession: what inotify cannot see must not be answered from the watch.

A mount or unmount raises no inotify event, a write to an overlay's layer directory raises
none on the overlay, a write through a file bind-mounted from outside raises none in the
context, and a forked child shares its parent's inotify queue. Each of these made a
session report an edited context unchanged (reproduced with the Docker engine: the image
held v1, the context v2); each must now be seen, or the context walked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import rtbuild
from rtbuild import BuildRequest, BuildResult, BuildSession, Config, RuntimeBuilder
from rtbuild.context import context_digest

# Runs in a private mount namespace: sets up SCENARIO's mounts, asks for the digest three
# times (walk, watch, watch), changes what the context shows, asks again, and prints
# whether the last answer is the truth (a fresh walk outside the session).
_SCRIPT = """
import os, shlex, subprocess, sys
from rtbuild.context import context_digest
from rtbuild.context._resident import ResidentDigests, resident

scenario, base = sys.argv[1], sys.argv[2]
ctx = base + "/ctx"
B, C = shlex.quote(base), shlex.quote(ctx)  # paths with a space and a backslash
sh = lambda cmd: subprocess.run(["sh", "-c", cmd], check=True)
if scenario.startswith("overlay"):
    sh(f"mount -t overlay overlay -o lowerdir={B}/lower,upperdir={B}/upper,workdir={B}/work {C}")
if scenario == "file-bound-before":
    sh(f"mount --bind {B}/outside.txt {C}/data/x")
elif scenario == "unmount":
    sh(f"mount -t tmpfs tmpfs {C}/data && echo mounted > {C}/data/x")
elif scenario == "rebind":
    sh(f"mount --bind {B}/first {C}/data")
digests = ResidentDigests()
with resident(digests):
    first = context_digest(ctx).digest
    assert context_digest(ctx).digest == first
    change = {
        "tmpfs": f"mount -t tmpfs tmpfs {C}/data && echo v2 > {C}/data/x",
        # ramfs stands in for NFS, FUSE, 9p...: a filesystem type not on the local list.
        "ramfs": f"mount -t ramfs none {C}/data && echo v2 > {C}/data/x",
        "bind-dir": f"mount --bind {B}/other {C}/data",
        "bind-file": f"mount --bind {B}/outside.txt {C}/data/x",
        "unmount": f"umount {C}/data",
        # A bind mount's filesystem lives on: its unmount raises no IN_UNMOUNT, and the
        # next one at the same point differs only in its ID and root in the mount table.
        "rebind": f"umount {C}/data && mount --bind {B}/other {C}/data",
        "file-bound-before": f"echo v2 > {B}/outside.txt",
        "overlay-lower": f"echo v2 > {B}/lower/data/x",
        "overlay-upper": f"echo v2 > {B}/upper/data/x",
    }[scenario]
    sh(change)
    last = context_digest(ctx).digest
truth = context_digest(ctx, use_cache=False).digest
print(last == truth, first != truth, digests.why_not_watched(ctx))
digests.close()
"""


def _needs_root_and_unshare() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root and unshare(1) (a private mount namespace) under CI")
        pytest.skip("needs root and unshare(1)")


@pytest.mark.parametrize(
    "scenario",
    [
        "tmpfs",
        "ramfs",
        "bind-dir",
        "bind-file",
        "unmount",
        "rebind",
        "file-bound-before",
        "overlay-lower",
        "overlay-upper",
    ],
)
def test_a_mount_or_a_layer_write_is_not_answered_from_the_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    _needs_root_and_unshare()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Mount points are escaped in the mount table: a space and a backslash must not hide one.
    base = tmp_path / ("with space" if scenario.startswith("overlay") else "with space\\and backslash")
    base.mkdir()
    ctx = base / "ctx"
    if scenario.startswith("overlay"):
        for name in ("lower/data", "upper/data", "work", "ctx"):
            (base / name).mkdir(parents=True)
        layer = base / ("upper" if scenario == "overlay-upper" else "lower")
        (base / "lower" / "Dockerfile").write_text("FROM scratch\n")
        (layer / "data" / "x").write_text("v1\n")
    else:
        (ctx / "data").mkdir(parents=True)
        (ctx / "Dockerfile").write_text("FROM scratch\n")
        (ctx / "data" / "x").write_text("v1\n")
    (base / "first").mkdir()
    (base / "first" / "x").write_text("v1 bound first\n")
    (base / "other").mkdir()
    (base / "other" / "x").write_text("v2 from elsewhere\n")
    (base / "outside.txt").write_text("bound from outside\n")
    script = tmp_path / "check.py"
    script.write_text(_SCRIPT)
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, str(script), scenario, str(base)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    truthful, changed, why = proc.stdout.strip().split(" ", 2)
    assert changed == "True", "the scenario did not change what the context shows"
    assert truthful == "True", f"a changed context was answered from the watch ({scenario})"
    if scenario in ("file-bound-before", "overlay-lower", "overlay-upper"):
        assert why != "None", "a context inotify cannot vouch for was watched"  # walked from the start
    if scenario == "ramfs":  # mounted later, it stops the watch: every later question walks
        assert why == f"{ctx}/data inside the context is ramfs, not watched (changes may come from elsewhere)"


class _Recorder(RuntimeBuilder):
    """Builds "images" as records of the context digest; an equal digest is a no-op."""

    name = "digest"
    capabilities = rtbuild.BuilderCapabilities()

    def __init__(self) -> None:
        self.images: dict[str, str] = {}

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        raise AssertionError("build_request is the entry point")

    def build_request(self, request: BuildRequest) -> BuildResult:
        digest = context_digest(request.path).digest
        cached = all(self.images.get(tag) == digest for tag in request.tags)
        self.images.update(dict.fromkeys(request.tags, digest))
        return BuildResult(request.tags[0], list(request.tags), self.name, 0.0, cached=cached)

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        return image_name in self.images


def test_a_forked_child_does_not_drain_its_parents_watch(
    context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After fork the child shares the inotify descriptor: its questions drained the events
    of a change, and the parent then answered "unchanged" from its watch (a stale image)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = Config(load_plugins=[])
    with BuildSession(config, pm=rtbuild.get_plugin_manager(config), builder=_Recorder()) as session:
        (context / "app.py").write_text("v1")
        build = lambda tag: session.build(BuildRequest(path=str(context), tags=[tag], builder="digest"))  # noqa: E731
        assert not build("app:1").cached and build("app:1").cached
        (context / "app.py").write_text("v2")
        pid = os.fork()
        if pid == 0:  # the child: a build of another tag asks about the same context
            code = 1
            try:
                code = 0 if not build("app:child").cached else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's own build went wrong"
        after = build("app:1")
        assert not after.cached, "the parent answered a changed context from its watch"
        assert build("app:1").cached  # and it watches again after the walk
