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
