"""Which signals rtbuild takes over: SIGTERM and SIGHUP at their defaults, never an ignored one."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from rtbuild._framework import interrupts


@pytest.fixture
def saved_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_default_signals_become_terminated(saved_handlers: None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    interrupts.install()
    with pytest.raises(interrupts.Terminated) as raised:
        signal.raise_signal(signal.SIGHUP)
    assert raised.value.signum == signal.SIGHUP


def test_an_ignored_hangup_stays_ignored(saved_handlers: None) -> None:
    # `nohup rtbuild ...` asks for SIGHUP to be ignored: rtbuild must not undo that.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    interrupts.install()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    signal.raise_signal(signal.SIGHUP)  # ignored: nothing is raised


# A signal that lands while Python finalises a dropped generator is raised inside the
# finaliser, printed as "Exception ignored" and lost: the build would run on. This is how a
# Ctrl-C was lost in the Kubernetes build (the watch generator closed as the pod started).
_SWALLOWED = """
import os, signal, sys, time
if sys.argv[1] == "installed":
    from rtbuild._framework.interrupts import install
    install()
def watch():
    try:
        yield 1
    finally:
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))  # arrives while the finaliser runs
        time.sleep(0.05)
events = watch()
next(events)
try:
    del events  # finalised here, as when a loop returns from inside a `for`
    time.sleep(float(sys.argv[3]))  # blocking: the interrupt must wake it, not wait for it
    print("ran on")
except KeyboardInterrupt as exc:
    print("stopped:", type(exc).__name__)
"""


def _run_swallowed(mode: str, sig: str, sleep: float) -> str:
    import subprocess
    import sys

    args = [sys.executable, "-c", _SWALLOWED, mode, sig, str(sleep)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout.strip()


@pytest.mark.parametrize(("sig", "raised"), [("SIGINT", "KeyboardInterrupt"), ("SIGTERM", "Terminated")])
def test_an_interrupt_swallowed_by_a_finaliser_is_delivered_again(sig: str, raised: str) -> None:
    assert _run_swallowed("installed", sig, 30) == f"stopped: {raised}"


def test_without_install_python_loses_the_interrupt() -> None:
    # The premise of the test above: plain Python prints the interrupt and runs on.
    assert _run_swallowed("plain", "SIGINT", 0.5) == "ran on"
