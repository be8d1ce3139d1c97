"""Step profiles from BuildKit's plain progress (and the legacy builder's), no engine."""

from __future__ import annotations

from collections.abc import Iterator

from rtbuild._observe.profile import cache_hit_ratio, render_profile
from rtbuild.enginekit import ContextTransferWatch, StepRecorder, attach_layer_sizes, layers_from_history

PLAIN = """\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 106B done
#1 DONE 0.0s
#4 [1/4] FROM docker.io/library/busybox:latest
#4 CACHED
#5 [2/4] RUN sleep 2
#6 [stage-1 3/4] COPY app /app
#5 0.120 some output
#6 DONE 0.3s
#5 [2/4] RUN sleep 2
#5 DONE 2.1s
#7 [4/4] RUN false
#7 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1
#8 exporting to image
#8 DONE 0.1s
"""


def _clock() -> Iterator[float]:
    now = 100.0
    while True:
        yield now
        now += 0.5


def _record(text: str) -> list[dict[str, object]]:
    ticks = _clock()
    recorder = StepRecorder(clock=lambda: next(ticks))
    for line in text.splitlines():
        recorder.feed(line)
    return recorder.steps()


def test_plain_stream_steps() -> None:
    steps = {s["name"]: s for s in _record(PLAIN)}
    assert list(steps) == [
        "[internal] load build definition from Dockerfile",
        "[1/4] FROM docker.io/library/busybox:latest",
        "[2/4] RUN sleep 2",
        "[stage-1 3/4] COPY app /app",
        "[4/4] RUN false",
        "exporting to image",
    ]
    sleep = steps["[2/4] RUN sleep 2"]
    # The repeated name line does not restart the step; the engine's 2.1 s is the duration.
    assert sleep["duration_s"] == 2.1 and sleep["status"] == "done" and not sleep["cached"]
    assert sleep["end"] - sleep["start"] >= 2.1 - 1e-6
    assert steps["[1/4] FROM docker.io/library/busybox:latest"]["cached"] is True
    assert steps["[4/4] RUN false"]["status"] == "error"
    assert steps["exporting to image"]["internal"] is True and sleep["internal"] is False


def test_legacy_builder_steps() -> None:
    text = (
        "Step 1/3 : FROM busybox\n ---> abc\nStep 2/3 : RUN sleep 2\n ---> Running in x\n"
        "Step 3/3 : COPY . /c\n ---> Using cache\nSuccessfully built abc\n"
    )
    steps = _record(text)
    assert [s["name"] for s in steps] == ["[1/3] FROM busybox", "[2/3] RUN sleep 2", "[3/3] COPY . /c"]
    assert [s["cached"] for s in steps] == [False, False, True]
    assert all(s["status"] in ("done", "cached") for s in steps)


def test_buildah_steps() -> None:
    text = (
        "STEP 1/4: FROM busybox:latest\nSTEP 2/4: RUN sleep 1\n--> Using cache 2060\n--> 2060\n"
        "STEP 3/4: RUN echo hi > /x\n--> 9422\n[2/2] STEP 4/4: COPY Dockerfile /d\nCOMMIT p:1\n--> 4d0d\n"
        "Successfully tagged localhost/p:1\n"
    )
    steps = _record(text)
    assert [s["name"] for s in steps] == [
        "[1/4] FROM busybox:latest",
        "[2/4] RUN sleep 1",
        "[3/4] RUN echo hi > /x",
        "[s2/2 4/4] COPY Dockerfile /d",
        "COMMIT p:1",
    ]
    assert [s["cached"] for s in steps] == [False, True, False, False, False]
    assert steps[-1]["internal"] is True and steps[2]["internal"] is False
    assert all(s["end"] >= s["start"] and s["status"] in ("done", "cached") for s in steps)


def test_layer_sizes_match_instructions() -> None:
    history = [
        {"CreatedBy": "COPY app /app # buildkit", "Size": 42},
        {"CreatedBy": "RUN /bin/sh -c sleep 2 # buildkit", "Size": 0},
        {"CreatedBy": '/bin/sh -c #(nop)  CMD ["sh"]', "Size": 0},
        {"CreatedBy": "/bin/sh -c #(nop) ADD file:abc in / ", "Size": 4_000_000},
    ]
    layers = layers_from_history(history)
    assert layers[0] == {"created_by": "ADD file:abc in /", "size": 4_000_000}
    steps = _record(PLAIN)
    attach_layer_sizes(steps, layers)  # type: ignore[arg-type]
    sizes = {s["name"]: s.get("layer_bytes") for s in steps}
    assert sizes["[stage-1 3/4] COPY app /app"] == 42 and sizes["[2/4] RUN sleep 2"] == 0


def test_profile_text_puts_the_slow_step_on_top() -> None:
    steps = _record(PLAIN)
    # RUN sleep 2, COPY, RUN false count; FROM does not; none of the three was cached.
    assert cache_hit_ratio(steps) == 0.0  # type: ignore[arg-type]
    text = render_profile({"steps": steps})
    assert text.splitlines()[1].endswith("[2/4] RUN sleep 2")
    assert "cache hits 0% of 3 instruction steps" in text
    assert "no step profile" in render_profile({})


# --- ContextTransferWatch: when the engine has the build context -----------------------

TRANSFER = """\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 31B done
#1 DONE 0.0s
#2 [internal] load .dockerignore
#2 transferring context: 2B done
#2 DONE 0.0s
#4 [1/3] FROM docker.io/library/busybox:latest
#4 CACHED
#6 [internal] load build context
#6 sha256:b3ba89a92b66614ecc4f7047e17e3cddde260c03fdd47e29ed5bc5a08250ee6f
#6 ...
#5 [2/3] RUN echo 1 > /nonce
#5 DONE 0.6s
#6 [internal] load build context
#6 transferring context: 560.70kB 5.0s
#6 transferring context: 774.86kB 7.1s done
#6 DONE 7.1s
#7 [3/3] COPY . /ctx
#7 DONE 2.7s
"""


def _watch_lines(lines: list[str]) -> list[int]:
    """Indexes of the lines after which ``on_sent`` was called."""
    calls: list[int] = []
    position = [0]
    watch = ContextTransferWatch(lambda: calls.append(position[0]))
    for index, line in enumerate(lines):
        position[0] = index
        watch.feed(line)
    assert watch.sent == bool(calls)
    return calls


def test_the_context_is_sent_when_buildkit_says_its_transfer_is_done() -> None:
    lines = TRANSFER.splitlines()
    # Not at the .dockerignore's own "transferring context: 2B done", not at "#6 ...":
    # once, at the build context's "done" (its DONE line follows).
    assert _watch_lines(lines) == [lines.index("#6 transferring context: 774.86kB 7.1s done")]


def test_the_context_is_sent_when_its_vertex_ends_another_way() -> None:
    for end in ("#6 DONE 0.1s", "#6 CACHED", "#6 ERROR: failed to read", "#6 CANCELED"):
        lines = ["#6 [internal] load build context", "#6 transferring context: 1.2MB 0.4s", end]
        assert _watch_lines(lines) == [2], end


def test_a_build_that_reads_no_context_never_says_it_was_sent() -> None:
    lines = [line for line in TRANSFER.splitlines() if not line.startswith(("#6", "#7"))]
    assert _watch_lines(lines) == []


def test_sequential_builders_have_the_context_at_their_first_step() -> None:
    legacy = ["Sending build context to Docker daemon  470.1MB", "Step 1/3 : FROM busybox", "Step 2/3 : RUN x"]
    assert _watch_lines(legacy) == [1]
    buildah = ["STEP 1/2: FROM busybox", "STEP 2/2: COPY . /ctx"]
    assert _watch_lines(buildah) == [0]
