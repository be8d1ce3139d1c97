"""Nothing outlives rtbuild: signals at a build's RUN step, kill -9, build-many Ctrl-C,
and bounded lock waits. After each: no orphan docker client, no tag, no temp dir, no lock."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import docker_build_helpers as h
import psutil
import pytest
from _processes import step_processes_running

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
# NONCE: a RUN step that ever finished would be cached, and a later run would not sleep.
SLEEPER = "FROM busybox:latest\nARG N=0\nARG NONCE\nRUN echo started-sleeping-$N-$NONCE && sleep 300\n"


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp / "TMPDIR")}


def _default_hangup() -> None:
    # Under `nohup` the suite inherits SIGHUP ignored, and rtbuild rightly keeps it so.
    # These tests are about a SIGHUP that is delivered: start rtbuild with the default.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _start(args: list[str], tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [h.RTBUILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp),
        preexec_fn=_default_hangup,
    )


def _wait_for_line(proc: subprocess.Popen[str], needle: str, count: int = 1) -> list[str]:
    """Read stderr up to the ``count``-th ``needle``; then keep draining it in a thread (a
    full pipe would block rtbuild's own writes). Returns the list the drain appends to."""
    assert proc.stderr is not None
    stream = proc.stderr
    seen = 0
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if needle in line and "RUN" not in line:
            seen += 1
            if seen >= count:
                threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
                return lines
    raise AssertionError(f"rtbuild ended before printing {needle!r}")


def _docker_children(pid: int) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "docker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _run_steps(*nonces: str) -> list[psutil.Process]:
    """The RUN steps' processes under dockerd (found by their build arg), each one's
    ``sleep`` among them: what BuildKit must stop once the client is gone."""
    found = []
    for nonce in nonces:
        steps = []
        for pid in step_processes_running(nonce, "sleep"):
            try:
                steps.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        assert any(p.name() == "sleep" for p in steps), f"no RUN step found for {nonce}"
        found.extend(steps)
    return found


def _locks_free(cache_home: Path) -> bool:
    for lock in (cache_home / "rtbuild" / "locks").glob("*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
    return True


def _settled(cli: str, tags: list[str]) -> list[str]:
    """Tags that exist once the engine had the time to finish cancelling (it would tag at the end)."""
    time.sleep(3)
    return [tag for tag in tags if h.inspect(cli, tag) is not None]


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGKILL, -9)],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "kill-9"],
)
def test_signal_mid_build_leaves_nothing_behind(
    images: h.Images, context: Path, isolated_dirs: Path, sig: int, status: int
) -> None:
    (isolated_dirs / "TMPDIR").mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(SLEEPER)
    nonce = f"NONCE={uuid.uuid4().hex}"
    proc = _start(["build", str(context), "-t", images.tag(), "--json", "--build-arg", nonce], isolated_dirs)
    _wait_for_line(proc, "started-sleeping")
    children = _docker_children(proc.pid)
    assert children, "the docker client was not found under rtbuild"
    steps = _run_steps(nonce)
    assert os.listdir(isolated_dirs / "TMPDIR"), "expected the build's temp dir while it runs"
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == status
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"still running after {sig}: {[c.cmdline() for c in alive]}"
    _gone, alive = psutil.wait_procs(steps, timeout=30)  # the engine's side: the RUN itself
    assert not alive, f"RUN step still running after {sig}: {[c.cmdline() for c in alive]}"
    assert _settled(images.cli, [images.tag()]) == []
    assert _locks_free(isolated_dirs / "XDG_CACHE_HOME")
    if sig != signal.SIGKILL:  # kill -9 gives rtbuild no chance to remove its temp dir
        assert os.listdir(isolated_dirs / "TMPDIR") == []
        assert proc.stdout is not None
        document = proc.stdout.read()
        assert document.count('"error"') == 1 and f'"exit_code": {status}' in document


def test_build_many_ctrl_c_stops_every_build(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    (isolated_dirs / "TMPDIR").mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(SLEEPER)
    batch = isolated_dirs / "many.toml"
    nonces = [uuid.uuid4().hex for _ in range(2)]
    batch.write_text(
        "".join(
            f'[[build]]\nname = "b{n}"\npath = "{context}"\ntags = ["{images.tag(f"b{n}")}"]\n'
            f'build_args = {{N = "{n}", NONCE = "{nonces[n]}"}}\n'
            for n in range(2)
        )
    )
    proc = _start(["build-many", str(batch), "-j", "2"], isolated_dirs)
    _wait_for_line(proc, "started-sleeping", count=2)
    children = _docker_children(proc.pid)
    assert len(children) >= 2
    steps = _run_steps(*(f"NONCE={nonce}" for nonce in nonces))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130  # the builds sleep for 300 s: only cancelling ends this
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive
    _gone, alive = psutil.wait_procs(steps, timeout=30)
    assert not alive, f"RUN steps still running after Ctrl-C: {[c.cmdline() for c in alive]}"
    assert _settled(images.cli, [images.tag("b0"), images.tag("b1")]) == []
    assert os.listdir(isolated_dirs / "TMPDIR") == []
    assert _locks_free(isolated_dirs / "XDG_CACHE_HOME")


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "plain"])
def test_build_many_ctrl_c_still_reports_what_finished(
    images: h.Images, context: Path, isolated_dirs: Path, tmp_path: Path, as_json: bool
) -> None:
    """One build done, one stopped mid-RUN, one never started: stdout carried only the
    interrupt, and the image already built was lost to the caller."""
    quick = tmp_path / "quick"
    quick.mkdir()
    (quick / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex}\n")
    (context / "Dockerfile").write_text(SLEEPER)
    batch = isolated_dirs / "many.toml"
    tags = [images.tag("quick"), images.tag("slow"), images.tag("later")]
    nonce = uuid.uuid4().hex
    batch.write_text(
        f'[[build]]\nname = "quick"\npath = "{quick}"\ntags = ["{tags[0]}"]\n'
        f'[[build]]\nname = "slow"\npath = "{context}"\ntags = ["{tags[1]}"]\nbuild_args = {{NONCE = "{nonce}"}}\n'
        f'[[build]]\nname = "later"\npath = "{quick}"\ntags = ["{tags[2]}"]\n'
    )
    proc = _start(["build-many", str(batch), "-j", "1", *(["--json"] if as_json else [])], isolated_dirs)
    try:
        lines = _wait_for_line(proc, "started-sleeping")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert proc.stdout is not None
        out = proc.stdout.read()
    finally:
        _stop(proc)
    assert _settled(images.cli, tags[1:]) == []  # (and stderr drained meanwhile)
    if as_json:
        report = json.loads(out)  # one document: the report, not a second "Interrupted" object
        assert report["interrupted"] is True and report["ok"] is False
        assert [b["status"] for b in report["builds"]] == ["ok", "interrupted", "skipped"]
        assert report["builds"][0]["result"]["image"] == tags[0]
        assert report["counts"] == {"ok": 1, "failed": 0, "skipped": 1, "interrupted": 1, "cached": 0}
    else:
        assert out == f"{tags[0]}\n"
        assert any("1 built, 0 reused, 0 failed, 1 skipped, 1 interrupted" in line for line in lines)
        assert any("build 2 (slow) was stopped:" in line for line in lines)
        # The interrupt is the cause, not the engine's answer to it, and no builder is blamed.
        stopped = lines[lines.index(next(line for line in lines if "build 2 (slow) was stopped:" in line)) :]
        assert "error: stopped by the interrupt (Ctrl-C or SIGTERM) before slow was built" in stopped[1], stopped
        assert not any("context canceled" in line or line.strip().startswith("from:") for line in stopped[:4]), stopped
    assert h.inspect(images.cli, tags[0]) is not None


HOLDER = textwrap.dedent(
    """
    import sys, time
    from rtbuild._framework.locks import build_lock
    with build_lock([sys.argv[1]]):
        print("held", flush=True)
        time.sleep(300)
    """
)


def _holder(tag: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, tag], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_lock_timeout_names_the_holder(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    holder = _holder(images.tag())
    try:
        out = subprocess.run(
            [h.RTBUILD, "build", str(context), "-t", images.tag(), "--lock-timeout", "1", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 1
    assert f"(pid {holder.pid})" in out.stderr and "--lock-timeout" in out.stderr
    assert h.inspect(images.cli, images.tag()) is None  # nothing was built


def test_lock_of_a_killed_holder_is_taken_over(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    holder = _holder(images.tag())
    waiter = _start(["build", str(context), "-t", images.tag()], isolated_dirs)
    _wait_for_line(waiter, "waiting for the build")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert waiter.wait(timeout=300) == 0
    assert h.inspect(images.cli, images.tag()) is not None


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:  # the test failed: do not leave it (and its build) running
        proc.kill()
        proc.wait()


def test_build_many_ctrl_c_starts_no_build_that_waited_for_the_tag(
    images: h.Images, context: Path, isolated_dirs: Path
) -> None:
    """Two entries for one tag: the second waits for the first's lock. Ctrl-C stopped the
    first, and the second then took the lock and ran a whole new build (its 300 s RUN)
    after the user's Ctrl-C."""
    (isolated_dirs / "TMPDIR").mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(SLEEPER)
    batch = isolated_dirs / "many.toml"
    nonce = uuid.uuid4().hex
    entry = f'[[build]]\npath = "{context}"\ntags = ["{images.tag()}"]\nbuild_args = {{NONCE = "{nonce}"}}\n'
    batch.write_text(entry * 2)
    proc = _start(["build-many", str(batch), "-j", "2"], isolated_dirs)
    try:
        lines = _wait_for_line(proc, "started-sleeping")
        deadline = time.monotonic() + 30
        while not any("waiting for the build of" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(f"waiting for the build of {images.tag()} in progress (in this process)" in x for x in lines)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        _stop(proc)
    # Progress lines only: the stopped build's error quotes its log tail ("    | ...") too.
    progress = [line for line in lines if not line.lstrip().startswith("|")]
    assert sum("started-sleeping" in line and "RUN" not in line for line in progress) == 1
    assert _settled(images.cli, [images.tag()]) == []
    assert os.listdir(isolated_dirs / "TMPDIR") == []
    assert _locks_free(isolated_dirs / "XDG_CACHE_HOME")


def test_build_many_ctrl_c_ends_a_wait_for_another_process_lock(
    images: h.Images, context: Path, isolated_dirs: Path
) -> None:
    """A build-many entry waiting for a tag another process builds: Ctrl-C waited for that
    process to finish (the worker thread sat in flock, which no signal reaches)."""
    holder = _holder(images.tag())
    proc = _start(["build-many", str(_one_entry_file(isolated_dirs, context, images.tag()))], isolated_dirs)
    try:
        _wait_for_line(proc, f"waiting for the build of {images.tag()} in progress (pid {holder.pid})")
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        assert time.monotonic() - started < 10
        assert holder.poll() is None  # the holder's lock is its own business
    finally:
        _stop(proc)
        holder.kill()
        holder.wait()
    assert h.inspect(images.cli, images.tag()) is None


def _one_entry_file(directory: Path, context: Path, tag: str) -> Path:
    batch = directory / "one.toml"
    batch.write_text(f'[[build]]\npath = "{context}"\ntags = ["{tag}"]\n')
    return batch
