"""``rtbuild metrics``' slowest steps: one row per Dockerfile step, not one per build-arg
value. BuildKit names a step by its expanded text (``RUN echo $X`` built with 50 values of
``X`` was 50 rows, ``[2/2] RUN echo 0 > /n`` ...); the profile now records each step's text
as written (``source``), the metrics plugin keeps it, and the report groups by it."""

from __future__ import annotations

import itertools
from pathlib import Path

from rtbuild import BuildResult
from rtbuild._observe.report import stream_report
from rtbuild.enginekit import StepRecorder, profile_steps
from rtbuild_metrics.record import append_line, make_record

DOCKERFILE = "FROM busybox:latest\nARG X=0\nARG Y\nRUN echo $X > /n\nRUN echo ${Y:-none} $X && \\\n    make\n"


def _buildkit(value: int) -> list[str]:
    """BuildKit's plain progress of one build, as docker 20.10 prints it (expanded names)."""
    return [
        "#1 [internal] load build definition from Dockerfile",
        "#1 DONE 0.0s",
        "#4 [1/3] FROM docker.io/library/busybox:latest",
        "#4 CACHED",
        f"#5 [2/3] RUN echo {value} > /n",
        "#5 DONE 1.5s",
        f"#6 [3/3] RUN echo y{value} {value} && make",
        "#6 DONE 2.0s",
    ]


def test_slowest_steps_group_a_step_whatever_its_build_args(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    clock = itertools.count(1_800_000_000.0, 0.5)
    for value in range(50):
        recorder = StepRecorder(clock=lambda: next(clock))
        for line in _buildkit(value):
            recorder.feed(line)
        steps, _ = profile_steps(recorder, None, None, dockerfile_text=DOCKERFILE)
        named = {step["name"]: step.get("source") for step in steps}
        assert named[f"[2/3] RUN echo {value} > /n"] == "RUN echo $X > /n"
        assert named[f"[3/3] RUN echo y{value} {value} && make"] == "RUN echo ${Y:-none} $X && make"
        assert named["[1/3] FROM docker.io/library/busybox:latest"] is None  # nothing expanded
        result = BuildResult(f"app:{value}", [f"app:{value}"], "docker", 4.0, details={"steps": steps})
        append_line(metrics, make_record(result, 1000))
    rows = stream_report(metrics)["total"]["slowest_steps"]
    assert [(row["name"], row["runs"], row["total_s"]) for row in rows] == [
        ("[3/3] RUN echo ${Y:-none} $X && make", 50, 100.0),
        ("[2/3] RUN echo $X > /n", 50, 75.0),
        ("[1/3] FROM docker.io/library/busybox:latest", 50, 0.0),
    ]


def test_a_step_named_as_written_or_ambiguous_gets_no_source() -> None:
    dockerfile = "FROM base\nRUN echo $A\nRUN echo $B\nRUN make\n"
    recorder = StepRecorder()
    for line in ["#5 [2/4] RUN echo 1", "#5 DONE 1.0s", "#6 [4/4] RUN make", "#6 DONE 1.0s"]:
        recorder.feed(line)
    recorder.feed("Step 3/4 : RUN echo $B")  # the legacy builder names it as written
    steps, _ = profile_steps(recorder, None, None, dockerfile_text=dockerfile)
    assert all("source" not in step for step in steps)  # $A or $B: cannot tell; others as written
