"""Proxy-named build args (``HTTPS_PROXY``, ``http_proxy``, ...) holding a URL with a password,
kept off the engine client's command line, which every local user can read (``ps``,
``/proc/PID/cmdline``).

Build-arg values rtbuild masks travel in the client's environment (:func:`build_args_via_env`),
but a proxy variable there also sets how the client itself connects (Podman pulls through
it; the docker CLI reaches a ``tcp://`` engine through it): such a value stayed on the
command line whenever rtbuild's own environment held another. A client that makes no
proxied connection of its own (the docker CLI over a unix socket or ssh) takes it in its
environment too; for any other the build is refused rather than the password shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from rtbuild._masking import url_passwords
from rtbuild.enginekit._redact import build_arg_specs, build_args_via_env

#: The proxy variables Go, curl, pip and the engines read (any case).
PROXY_NAME = re.compile(r"^(HTTPS?|FTP|ALL|NO)_PROXY$", re.IGNORECASE)


def _proxy_passwords(argv: Sequence[str]) -> dict[str, str]:
    """``{NAME: VALUE}`` of the proxy-named build args in ``argv`` given with a value holding
    a password (the last value of a name, as the engines read it)."""
    found: dict[str, str] = {}
    for _, _, spec in build_arg_specs(argv):
        name, sep, value = spec.partition("=")
        if sep:
            found.pop(name, None)
            if PROXY_NAME.match(name) and url_passwords(value):
                found[name] = value
    return found


def client_argv(
    argv: Sequence[str], environ: Mapping[str, str], *, proxies_in_env: bool
) -> tuple[list[str], dict[str, str]]:
    """``argv`` and the environment to add for the engine client (:func:`build_args_via_env`),
    with proxy-named build args holding a password in that environment too when
    ``proxies_in_env``. Raises :class:`~rtbuild.errors.ConfigError` naming (never showing) a
    proxy password that would still be on the command line."""
    seen = dict(environ)
    if proxies_in_env:
        seen.update(_proxy_passwords(argv))  # as if rtbuild's environment agreed: moved
    run_argv, hidden = build_args_via_env(argv, seen)
    left = sorted(_proxy_passwords(run_argv))
    if left:
        raise _refused(left)
    return run_argv, hidden


def _refused(names: list[str]) -> Exception:
    from rtbuild.errors import ConfigError

    listed = ", ".join(names)
    return ConfigError(
        f"build arg(s) {listed} hold a proxy URL with a password, which would reach the engine client only on"
        " its command line, readable by every local user (ps): this client also reads that variable from its"
        " environment for its own connections (its pulls, its engine), where rtbuild's own value differs",
        step="start engine",
        hint=f"set {listed} in rtbuild's environment to the same URL (the client then takes the build arg from"
        " there, and uses that proxy itself too), or give the build its password as a secret"
        " (--secret id=proxy,env=VAR and a RUN --mount=type=secret that sets the proxy)",
    )


__all__ = ["PROXY_NAME", "client_argv"]
