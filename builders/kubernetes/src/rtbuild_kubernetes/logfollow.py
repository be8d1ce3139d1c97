"""Following the build container's log live. A stream that ends while the container still runs
(an API server restarted, a load balancer's idle timeout during a silent ``RUN`` step) is opened
again, and the lines already shown are skipped by their timestamps; a log the account may not
read (403 on ``pods/log``) is one warning, and the build goes on without it."""

from __future__ import annotations

import time
from collections.abc import Callable

from .client import KubeClient
from .failures import ClusterAuthError, ObjectGoneError

#: How often a stream that ended early is opened again, and the pause before each time.
LOG_REOPENS = 20
REOPEN_PAUSE_S = 1.0
#: A re-opened stream asks for the seconds since the last line arrived here, plus this margin
#: (a duration measured on this machine: the node's clock may differ).
SINCE_MARGIN_S = 10


def stamp_key(stamp: str) -> str | None:
    """An RFC 3339 UTC timestamp as a string that sorts by time (the kubelet trims the trailing
    zeros of the fraction, so ``.5Z`` and ``.45Z`` do not compare as written); None when
    ``stamp`` is not one."""
    if len(stamp) < 20 or stamp[4] != "-" or stamp[10] != "T" or not stamp.endswith("Z"):
        return None
    base, _, fraction = stamp[:-1].partition(".")
    return f"{base}.{fraction.ljust(9, '0')}"


def follow_build_log(
    client: KubeClient,
    pod: str,
    container: str,
    on_line: Callable[[str], None],
    running: Callable[[], bool],
    warn: Callable[[str], None],
    pause: Callable[[float], object] = time.sleep,
) -> None:
    """Hand every line of ``container``'s log to ``on_line``, once, until the container ends
    (``running()`` is asked whenever a stream ends; ``pause`` waits before a stream is opened
    again, and may return early: the caller's ``threading.Event.wait`` once the build is done, so
    a pod status that lags behind its log costs one more read of the log, not a second)."""
    seen: str | None = None
    arrived = 0.0  # when the newest line arrived (time.monotonic)
    problem: Exception | None = None
    final = False
    for _ in range(LOG_REOPENS + 2):
        cut = ""  # a last line without its newline: the stream ended in its middle
        since = int(time.monotonic() - arrived) + SINCE_MARGIN_S if seen is not None else None
        try:
            for raw in client.follow_log(pod, container, timestamps=True, since_seconds=since):
                if not raw.endswith("\n"):  # only ever the stream's last line
                    cut = raw
                    continue
                stamp, _, line = raw.rstrip("\n").partition(" ")
                key = stamp_key(stamp)
                if key is None:  # a server that sent no timestamp: nothing to skip lines by
                    line = raw.rstrip("\n")
                elif seen is not None and key <= seen:
                    continue  # shown before the stream was opened again
                else:
                    seen, arrived = key, time.monotonic()
                on_line(line)
            problem = None
        except ClusterAuthError as exc:  # 401/403 on pods/log: opening it again cannot help
            problem = exc
            break
        except ObjectGoneError:  # the pod was deleted: the pod watch says so, this is not the log's fault
            problem = None
            break
        except Exception as exc:  # the result comes from the pod's state, not from its log
            problem = exc
        if seen is None or final:
            if cut:  # the container's own last words, without a newline
                stamp, _, line = cut.partition(" ")
                on_line(line if stamp_key(stamp) else cut)
            break
        if not running():
            # The container has ended: one last read brings what a stream that broke quietly
            # (a reset the client took for the end) missed. It returns at once, its tail only.
            final = True
            continue
        pause(REOPEN_PAUSE_S)  # the reopened stream brings the cut line whole
    if problem is not None:
        hint = getattr(problem, "hint", None)
        warn(
            f"the build's live log is not available ({problem}{f'; {hint}' if hint else ''}):"
            " the build goes on, its result comes from the pod's state"
        )


__all__ = ["follow_build_log", "stamp_key"]
