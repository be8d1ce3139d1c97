"""The httpx clients a :class:`~rtbuild.oci.RegistryClient` keeps, one per host.

Each request made a client of its own: a new TCP connection (and TLS handshake) per
registry call, and a new SSL context, whose CA bundle load alone took about 35 ms of CPU.
The no-op check of a two-platform push asks 7 times (0.35 s of its 0.36 s went there).
Clients are kept per thread (a request past its deadline closes its client, which must not
end another thread's request) and per process (a forked child never shares the parent's
connections); a closed one is replaced.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rtbuild.oci._hosts import is_insecure, is_loopback

if TYPE_CHECKING:
    import httpx


class Sessions:
    def __init__(self, timeout: float, insecure_registries: Iterable[str], transport: httpx.BaseTransport | None):
        self.timeout, self.insecure_registries, self.transport = timeout, list(insecure_registries), transport
        self._local = threading.local()

    def client(self, host: str) -> httpx.Client:
        """The client for ``host`` (TLS and proxy rules are the host's own)."""
        import httpx

        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.pid, local.clients = os.getpid(), {}
        found: httpx.Client | None = local.clients.get(host)
        if found is None or found.is_closed:
            found = local.clients[host] = httpx.Client(
                timeout=self.timeout,
                follow_redirects=True,
                # A proxy from the environment must not see loopback traffic.
                trust_env=not is_loopback(host),
                verify=not is_insecure(host, self.insecure_registries),
                transport=self.transport,
                headers={"User-Agent": "rtbuild"},
            )
        return found


__all__ = ["Sessions"]
