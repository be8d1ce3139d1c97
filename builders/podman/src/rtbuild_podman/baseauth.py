"""Credentials for the images a ``podman build`` pulls (FROM bases, ``COPY --from``, mounts),
and the error when their registry still refuses them.

Only the engine-build path pays for this (the no-op skip never reaches it): one lookup per
registry the Dockerfile takes images from, a credential helper run included.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence

import rtbuild
from rtbuild import BuildRequest, ConfigError, RegistryAuthError
from rtbuild.enginekit import external_images
from rtbuild.oci import parse_reference

from .auth import build_auth_document, in_memory
from .streamed import TAIL_LINES

#: A registry's refusal of our credentials (or of their absence). Not a bare "denied":
#: Docker Hub answers "requested access to the resource is denied" for a name that does not
#: exist too, which stays a base-image error.
_REFUSED = ("unauthorized", "authentication required", "invalid username/password", "incorrect username or password")
#: Where containers/image reports a registry it was pulling from.
_SOURCE = re.compile(r"docker://(\S+): ")
#: containers/image failing on an auth file: ``reading JSON file "PATH": REASON``.
_AUTH_FILE = re.compile(r'reading JSON file "([^"]+)": (.+)$')


def image_registries(dockerfile: str, build_args: Mapping[str, str], platform: str | None) -> list[str | None]:
    """The registry of each image the Dockerfile takes from outside, once each, in order;
    ``None`` for a name that does not parse (podman rejects it itself)."""
    with open(dockerfile, encoding="utf-8", errors="replace") as handle:
        images = external_images(handle.read(), build_args, platform)
    found: list[str | None] = []
    for image in images:
        try:
            found.append(parse_reference(image).registry)
        except Exception:
            found.append(None)
    return list(dict.fromkeys(found))


@contextlib.contextmanager
def base_authfile(
    request: BuildRequest, dockerfile: str, build_args: dict[str, str]
) -> Iterator[tuple[list[str], tuple[int, ...]]]:
    """``(["--authfile", PATH], fds to pass)`` for the build's registries, or ``([], ())``
    when rtbuild has no credentials Podman would not find itself (its lookup is unchanged)
    or the request names its own ``--authfile``."""
    if any(arg == "--authfile" or arg.startswith("--authfile=") for arg in request.extra_build_args):
        yield [], ()
        return
    reporter = rtbuild.get_reporter()
    registries = [r for r in image_registries(dockerfile, build_args, request.platform) if r is not None]
    data = build_auth_document(registries, lambda text: reporter.event("warning", message=text))
    if data is None:
        yield [], ()
        return
    with in_memory(data) as (path, fds):
        yield ["--authfile", path], fds


def refused_pull(lines: Sequence[str], log_path: str | None) -> RegistryAuthError | None:
    """The build's error when podman stopped because a registry refused to serve a base
    image (``FROM``), else ``None``. (A refused ``COPY --from`` image Podman 4.3 reports as
    "no stage or image found with that name": that one stays a build failure.)"""
    # Podman's own last word, not a RUN step's output that happens to look like one.
    line = next((text for text in reversed(lines) if text.startswith("Error:")), "")
    source = _SOURCE.search(line)
    if source is None or not any(marker in line.lower() for marker in _REFUSED):
        return None
    image = source.group(1)
    try:
        registry = parse_reference(image).registry
    except Exception:
        registry = image.split("/", 1)[0]
    return RegistryAuthError(
        f"registry {registry} refused the pull of base image {image}",
        step="pull image",
        log_tail=[text for text in lines if text.strip()][-TAIL_LINES:],
        log_path=log_path,
        hint=f"log in with `podman login {registry}` or `docker login {registry}` (rtbuild hands podman"
        " the credentials it finds there, credential helpers included)",
    )


def broken_auth_file(lines: Sequence[str], log_path: str | None) -> ConfigError | None:
    """The build's error when podman stopped on an auth file it cannot read (not JSON,
    unreadable) while looking up a base image's credentials, else ``None``: the same
    configuration error (exit 2) as ``rtbuild exists`` reading that file itself."""
    start = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("Error:")), None)
    if start is None or "getting username and password" not in lines[start]:
        return None
    found = next(filter(None, (_AUTH_FILE.search(line) for line in lines[start:])), None)
    if found is None:
        return None
    return ConfigError(
        f"podman cannot read the auth file {found.group(1)}: {found.group(2)}",
        step="read registry credentials",
        log_tail=[text for text in lines if text.strip()][-TAIL_LINES:],
        log_path=log_path,
        hint="fix or remove the file, or run `podman login REGISTRY` again (podman reads it for every registry)",
    )


def refuse_creds(args: Sequence[str]) -> None:
    """``--creds USER:PASSWORD`` among the extra arguments is refused before any work: on
    podman's command line the password is readable by every local user while the build
    runs (``/proc/PID/cmdline``, ``ps``). It is not turned into an in-memory ``--authfile``:
    podman sends ``--creds`` to every registry the build reaches, search registries a short
    name is tried at and ``--cache-from``/``--cache-to`` repositories included, which an
    auth file keyed by the registries rtbuild can name would not match."""
    for arg in args:
        if arg == "--creds" or arg.startswith("--creds="):
            raise ConfigError(
                "the extra argument --creds would put a registry password on podman's command line,"
                " readable by every local user while the build runs",
                step="validate request",
                hint="log in instead (`podman login REGISTRY` or `docker login REGISTRY`): rtbuild hands podman"
                " the credentials it finds there in memory; or name an auth file with --extra=--authfile=FILE",
            )


def creds_passwords(args: Sequence[str]) -> list[str]:
    """The passwords of ``--creds USER:PASSWORD`` in raw ``podman build`` arguments
    (``--extra``), to mask in its output as build-arg secrets are."""
    values = [arg[len("--creds=") :] for arg in args if arg.startswith("--creds=")]
    values += [args[index + 1] for index, arg in enumerate(args[:-1]) if arg == "--creds"]
    return [value.partition(":")[2] for value in values if value.partition(":")[2]]


#: What podman build hands each RUN from its own environment unless --http-proxy=false
#: (containers/common's ProxyEnv).
PROXY_ENV = ("http_proxy", "https_proxy", "ftp_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY")


def proxy_passwords(args: Sequence[str]) -> list[str]:
    """The passwords of the proxy URLs podman forwards from rtbuild's environment into every
    ``RUN`` (``HTTPS_PROXY=http://user:PW@proxy:3128``), as written and percent-decoded:
    a step that prints its environment, or pip's proxy errors, show them."""
    from urllib.parse import unquote

    from rtbuild.enginekit import url_passwords

    if any(arg in ("--http-proxy=false", "--http-proxy=0") for arg in args):
        return []
    found = [password for name in PROXY_ENV for password in url_passwords(os.environ.get(name, ""))]
    return list(dict.fromkeys([*found, *map(unquote, found)]))


def shown_argv(argv: Sequence[str]) -> list[str]:
    """:func:`rtbuild.enginekit.redact_argv`, and ``--creds USER:PASSWORD`` as ``USER:***``:
    the command as rtbuild prints (``--dry-run``) and logs it."""
    from rtbuild.enginekit import redact_argv

    out = redact_argv(argv)
    for index, arg in enumerate(out):
        if arg.startswith("--creds="):
            out[index] = "--creds=" + _masked_creds(arg[len("--creds=") :])
        elif index and out[index - 1] == "--creds":
            out[index] = _masked_creds(arg)
    return out


def _masked_creds(value: str) -> str:
    from rtbuild.enginekit import MASK

    user, sep, password = value.partition(":")
    return f"{user}:{MASK}" if sep and password else value


__all__ = [
    "base_authfile",
    "broken_auth_file",
    "creds_passwords",
    "image_registries",
    "proxy_passwords",
    "refuse_creds",
    "refused_pull",
    "shown_argv",
]
