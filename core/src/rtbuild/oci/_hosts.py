"""Registry host rules and ``WWW-Authenticate`` challenges (shared by the registry client
and its request helpers)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_CHALLENGE_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: the scheme (lowercase) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse ``Bearer realm="...",service="...",scope="..."`` or ``Basic realm="..."``."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _CHALLENGE_PARAM.match(rest, position)
        if not match or match.end() == position:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[match.group(1).lower()] = value
        position = match.end()
    return Challenge(scheme.lower(), params)


def _host_part(registry: str) -> str:
    if registry.startswith("["):
        return registry[1:].split("]", 1)[0]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def is_loopback(registry: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1, with or without a port."""
    host = _host_part(registry)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_insecure(registry: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Listed as ``host[:port]`` or inside a listed CIDR (dockerd's ``insecure-registries``)."""
    host = _host_part(registry)
    for entry in insecure_registries:
        entry = entry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
        if entry in (registry, host):
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def same_origin(url: str, other: str) -> bool:
    """Scheme, host and port (the scheme's default when absent) are the same."""
    import httpx

    def origin(text: str) -> tuple[str, str, int | None]:
        parsed = httpx.URL(text)
        return parsed.scheme, parsed.host, parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)

    return origin(url) == origin(other)


__all__ = ["Challenge", "is_insecure", "is_loopback", "parse_challenge", "same_origin"]
