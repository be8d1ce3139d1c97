"""One engine round trip for the runtime exact hit's two questions.

The runtime API asks the builder for a base image's ID, then whether the tag derived from
that ID exists. The second name depends on the first answer, so the two cannot be asked
together in general; but a service asks the same pair on every sandbox start. The builder
remembers, per base image, which image was asked about right after it, and the next time
that base is looked up it inspects both in one round trip (the engine answers parallel
requests together). The early answer is used once, only when it says "present" and is
less than a second old; in every other case the engine is asked again, as before.
"""

from __future__ import annotations

import threading
import time

#: How many base images are remembered (a service uses a handful).
MAX_BASES = 64
#: An early "present" answer older than this is not used (the runtime asks within
#: milliseconds: the payload's stat walk lies between the two questions).
FRESH_S = 1.0


class Lookahead:
    """Which image followed each base lookup, and early answers waiting to be used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, str] = {}
        self._present: dict[str, float] = {}
        # Per thread: batch builds share one builder, and each thread asks its own pairs.
        self._local = threading.local()

    def expect(self, base: str) -> str | None:
        """``base`` is being looked up: the image asked about after it last time, if any."""
        self._local.base = base
        with self._lock:
            return self._next.get(base)

    def present(self, name: str) -> None:
        """The engine said ``name`` exists (as part of a base lookup)."""
        now = time.monotonic()
        with self._lock:
            if len(self._present) >= MAX_BASES:  # answers nobody asked for: drop the old ones
                self._present = {key: at for key, at in self._present.items() if now - at < FRESH_S}
            self._present[name] = now

    def asked(self, name: str) -> bool:
        """``name`` is being checked: True when an early answer says it is present.

        The first check after a base lookup is remembered as that base's follow-up.
        """
        base = getattr(self._local, "base", None)
        self._local.base = None
        with self._lock:
            if base is not None and base != name:
                self._next.pop(base, None)
                if len(self._next) >= MAX_BASES:
                    del self._next[next(iter(self._next))]  # the least recently recorded
                self._next[base] = name
            seen = self._present.pop(name, None)
        return seen is not None and time.monotonic() - seen < FRESH_S


__all__ = ["FRESH_S", "MAX_BASES", "Lookahead"]
