"""The context tars (mode 0600, a copy of the whole build context) an rtbuild killed mid-build
left in $TMPDIR were never removed. A Kubernetes build now sweeps, at its start, each one
older than an hour whose owning process is gone (the owner record of its directory); bare
tars of an older rtbuild, which name no owner, after a day."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from rtbuild import BuildRequest, ConfigError
from rtbuild_kubernetes.builder import KubernetesBuilder
from rtbuild_kubernetes.settings import Settings

HOUR = 3600


def _aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def _claimed_by_a_dead_process(directory: Path) -> Path:
    directory.mkdir()
    (directory / "context.tar").write_bytes(b"secret context")
    code = "import sys; from rtbuild.enginekit import claim_directory; claim_directory(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(directory)], check=True, timeout=60)  # then exits
    return directory


@pytest.fixture
def tmpdir_of_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    return base


def test_a_kubernetes_build_sweeps_the_tars_of_killed_runs(tmpdir_of_ours: Path, tmp_path: Path) -> None:
    from rtbuild.enginekit import claim_directory

    base = tmpdir_of_ours
    dead_old = _aged(_claimed_by_a_dead_process(base / "rtbuild-k8s-context-dead1"), 2 * HOUR)
    dead_new = _claimed_by_a_dead_process(base / "rtbuild-k8s-context-dead2")  # maybe not finished starting
    alive = base / "rtbuild-k8s-context-alive"
    alive.mkdir()
    claim_directory(str(alive))  # this process: a build still running (for hours)
    _aged(alive, 5 * HOUR)
    bare_old = base / "rtbuild-k8s-context-abc123.tar"
    bare_old.write_bytes(b"x")
    _aged(bare_old, 25 * HOUR)
    bare_recent = base / "rtbuild-k8s-context-def456.tar"
    bare_recent.write_bytes(b"x")
    _aged(bare_recent, 2 * HOUR)
    unrelated = _aged(_claimed_by_a_dead_process(base / "other-tool-dir"), 2 * HOUR)

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (ctx / "a").write_text("a\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters: [\n")  # the build stops at connecting, after the sweep
    builder = KubernetesBuilder(Settings(kubeconfig=str(kubeconfig), skip_unchanged=False))
    with pytest.raises(ConfigError):
        builder.build_request(BuildRequest(path=str(ctx), tags=["127.0.0.1:9/team/k:1"]))

    left = sorted(p.name for p in base.iterdir())
    assert not dead_old.exists() and not bare_old.exists(), left
    assert dead_new.exists() and alive.exists() and bare_recent.exists() and unrelated.exists(), left
    # and the build's own tar went with it
    assert left == sorted(p.name for p in (dead_new, alive, bare_recent, unrelated))


def test_the_tar_is_private_and_claimed(tmpdir_of_ours: Path, tmp_path: Path) -> None:
    from rtbuild.enginekit import dead_owner_note
    from rtbuild_kubernetes.context_tar import write_context_tar

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    tar = write_context_tar(str(ctx))
    try:
        holder = Path(tar.path).parent
        assert holder.parent == tmpdir_of_ours and holder.name.startswith("rtbuild-k8s-context-")
        assert os.stat(tar.path).st_mode & 0o777 == 0o600 and os.stat(holder).st_mode & 0o777 == 0o700
        assert (holder / ".rtbuild-owner").is_file() and dead_owner_note(str(holder)) is None
    finally:
        tar.remove()
    assert list(tmpdir_of_ours.iterdir()) == []
