"""The probe a stopped build asks whether its Docker engine still answers
(:class:`rtbuild.enginekit.EngineProbe`): a frozen daemon's client is then killed at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtbuild.enginekit import EngineProbe

    from .engine import EngineAPI

#: How long the engine gets to answer the stop's ping (a healthy one answers in milliseconds).
PING_TIMEOUT_S = 2.0


def engine_probe(host: str) -> EngineProbe | None:
    """The probe for the engine at ``host``; ``None`` for a TLS engine (asked through the docker
    SDK, whose calls give up on an interrupt: the stop would take that for silence)."""
    from rtbuild.enginekit import EngineProbe

    from .engine import EngineAPI, shown_host

    api = EngineAPI(host, timeout=PING_TIMEOUT_S)
    if api.uses_sdk:
        return None
    return EngineProbe(
        f"the Docker engine at {shown_host(host)}",
        lambda: _pings(api),
        hint="check that the daemon runs and is not frozen or overloaded (`systemctl status docker`, its log:"
        " `journalctl -u docker`; a stopped dockerd, kill -STOP or a debugger, takes connections and answers none)",
    )


def _pings(api: EngineAPI) -> bool:
    """``GET /_ping`` over the socket, answered within :data:`PING_TIMEOUT_S`. Not through
    :meth:`EngineAPI.call`, whose read an interrupt shuts down: this runs during one."""
    from rtbuild.errors import AgentRuntimeBuildError

    try:
        sock = api._send("/_ping")
    except AgentRuntimeBuildError:
        return False
    try:
        return sock.recv(64).startswith(b"HTTP/")
    except OSError:
        return False
    finally:
        sock.close()


__all__ = ["PING_TIMEOUT_S", "engine_probe"]
