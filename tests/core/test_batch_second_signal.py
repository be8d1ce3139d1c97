"""A second Ctrl-C/SIGTERM while build-many waits for its stopped builds.

The first signal stops the running builds and waits for their workers, which never see
the interrupt. A worker that does not stop (a wedged engine call) held rtbuild until a
second signal, which then lost the partial report (only the interrupt's error document
was printed) and still did not end rtbuild: the interpreter joined the hung worker at
exit. The second signal now stops the wait: the report is printed, the entry still
running is ``interrupted``, and rtbuild exits 128 + the signal at once, without joining
the workers it no longer waits for (the interpreter's exit joined them: with two hung
builds, the report was printed and rtbuild still never ended).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))

#: "hang" builds never end, whatever the cancel does (a wedged engine call); the others build at once.
HANGING_SITE_BUILDER = """
import os
import pathlib
import time

from rtbuild import RuntimeBuilder, on_cancel

if "STOP_WAIT_S" in os.environ:  # the batch's wait after the first signal, shortened for a test
    import rtbuild._framework.batch

    rtbuild._framework.batch.STOP_WAIT_S = float(os.environ["STOP_WAIT_S"])


class SiteBuilder(RuntimeBuilder):
    def build(self, path, tags, platform=None, extra_build_args=None):
        if "hang" in tags[0]:
            marks = pathlib.Path(os.environ["HANG_MARKS"])
            on_cancel(lambda: (marks / "cancelled").touch())
            (marks / f"hanging-{tags[0]}").touch()
            while True:
                time.sleep(1)
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        return False
"""


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    for _ in range(600):  # a guard, not a timing: 60 s
        if path.exists():
            return
        if proc.poll() is not None:
            pytest.fail(f"rtbuild ended before {path.name}: {proc.communicate()}")
        time.sleep(0.1)
    pytest.fail(f"no {path.name} after 60 s")


def _run(
    site: Any,
    tmp_path: Path,
    hung: list[str],
    signals: tuple[int, int | None],
    options: list[str],
    env_extra: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """build-many of ok:1, the ``hung`` builds and, for one hung build, later:1 (-j 1: never
    started); ``signals[0]`` once all hang, ``signals[1]`` (unless None) once the batch ran
    its cancel callbacks (it then waits for its workers)."""
    site.add_builder("rtbuild-hang", "hang", source=HANGING_SITE_BUILDER)
    blocks = ['[defaults]\nbuilder = "hang"\n']
    for i, tag in enumerate(["ok:1", *hung, *(["later:1"] if len(hung) == 1 else [])]):
        (tmp_path / f"c{i}").mkdir()
        (tmp_path / f"c{i}" / "Dockerfile").write_text("FROM scratch\n")
        blocks.append(f'[[build]]\npath = "c{i}"\ntags = ["{tag}"]\n')
    batch = tmp_path / "images.toml"
    batch.write_text("\n".join(blocks))
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RTBUILD_")},
        "PYTHONPATH": str(site.root),
        "HANG_MARKS": str(marks),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        **(env_extra or {}),
    }
    jobs = "1" if len(hung) == 1 else str(1 + len(hung))  # several: each hung build its own worker
    proc = subprocess.Popen(
        [RTBUILD, "build-many", str(batch), "-j", jobs, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        for tag in hung:
            _wait_for(marks / f"hanging-{tag}", proc)
        proc.send_signal(signals[0])
        _wait_for(marks / "cancelled", proc)  # the batch ran its cancel callbacks; it waits for the workers
        if signals[1] is not None:
            proc.send_signal(signals[1])
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("rtbuild had not ended 60 s after the last signal")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out, err


@pytest.mark.parametrize(("first", "second"), [(signal.SIGINT, signal.SIGINT), (signal.SIGINT, signal.SIGTERM)])
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_a_second_signal_prints_the_partial_report_and_exits(
    rtbuild_site: Any, tmp_path: Path, first: int, second: int, as_json: bool
) -> None:
    options = ["--json"] if as_json else ["-q"]
    code, out, err = _run(rtbuild_site, tmp_path, ["hang:1"], (first, second), options)
    assert code == 128 + second, err[-3000:]
    if as_json:
        report = json.loads(out)  # the report, not the interrupt's error document
        assert report["interrupted"] is True and report["ok"] is False
        assert [b["status"] for b in report["builds"]] == ["ok", "interrupted", "skipped"]
        error = report["builds"][1]["error"]
        assert "hang:1" in error["message"] and "did not wait" in error["message"], error
        assert report["counts"]["interrupted"] == 1
    else:
        assert out.split() == ["ok:1"]
        assert "build 2 (hang:1) was stopped:" in err, err
        assert "1 built, 0 reused, 0 failed, 1 skipped, 1 interrupted" in err, err


def test_rtbuild_ends_with_several_builds_hung(rtbuild_site: Any, tmp_path: Path) -> None:
    """The second signal interrupts the join of one worker; the interpreter's exit joined the
    others, so rtbuild printed its report and then never ended."""
    signals = (signal.SIGTERM, signal.SIGTERM)
    code, out, err = _run(rtbuild_site, tmp_path, ["hang:1", "hang:2"], signals, ["--json"])
    assert code == 143, err[-3000:]
    report = json.loads(out)
    assert [b["status"] for b in report["builds"]] == ["ok", "interrupted", "interrupted"]


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_one_signal_reports_a_build_that_does_not_stop_after_the_wait(
    rtbuild_site: Any, tmp_path: Path, as_json: bool
) -> None:
    """A supervisor sends one SIGTERM, then SIGKILL after its grace period (a Kubernetes
    pod: 30 s): build-many waited for a wedged worker without end, so the SIGKILL came first
    and the report of what had been built was lost. It now waits STOP_WAIT_S (25 s; 2 s
    here), then reports and exits."""
    options = ["--json"] if as_json else ["-q"]
    wait = {"STOP_WAIT_S": "2"}
    code, out, err = _run(rtbuild_site, tmp_path, ["hang:1"], (signal.SIGTERM, None), options, wait)
    assert code == 143, err[-3000:]
    if as_json:
        report = json.loads(out)
        assert [b["status"] for b in report["builds"]] == ["ok", "interrupted", "skipped"]
        message = report["builds"][1]["error"]["message"]
        assert message.startswith("still running 2 s after the interrupt (Ctrl-C or SIGTERM) while"), message
        assert "hang:1" in message and "did not wait" in message
    else:
        assert out.split() == ["ok:1"]
        assert "1 built, 0 reused, 0 failed, 1 skipped, 1 interrupted" in err, err
