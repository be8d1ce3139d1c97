"""Ctrl-C/SIGTERM in build-many stops a podman pull or push its workers run.

build-many pushes in worker threads, which never see the interrupt, and podman runs in a
session of its own (no terminal signal reaches it): the batch waited for the push to end
(on a stalled registry push_stall_timeout, 120 s by default) before rtbuild could exit.
The batch's cancel callbacks (rtbuild.on_cancel, called by cancel_all) now stop it.
"""

from __future__ import annotations

import threading
import time

from rtbuild._framework.interrupts import cancel_all
from rtbuild_podman.streamed import INTERRUPTED, Streamed, run_streamed


def test_a_cancel_stops_a_streamed_push_and_its_process_group() -> None:
    # A stand-in for a podman push stuck on a stalled registry: a process group that prints
    # a line and then never ends (a child of its own too, as podman's helpers).
    argv = ["sh", "-c", "echo 'Copying blob 1234'; sleep 300 & wait"]
    ended: list[Streamed] = []
    worker = threading.Thread(target=lambda: ended.append(run_streamed(argv, "push", timeout=600, stall=600)))
    worker.start()
    time.sleep(1.0)  # the push is under way
    cancel_all()
    worker.join(30)
    assert not worker.is_alive(), "the push went on after the cancel"
    assert ended[0].code is None and ended[0].why == INTERRUPTED
    assert ended[0].tail == ["Copying blob 1234"]


def test_a_push_that_ended_is_not_touched_by_a_later_cancel() -> None:
    run = run_streamed(["sh", "-c", "echo done"], "push", timeout=60, stall=60)
    cancel_all()  # the callback went with the run
    assert run == Streamed(0, ["done"], None)
