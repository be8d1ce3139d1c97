"""Base images the engine would pull: their registries are asked first, with a deadline.

BuildKit waits for ever on a registry that accepts a connection and never answers (the
build log ends at ``[internal] load metadata for REG/...``). Before the engine starts,
every base image that is not local is looked up with a manifest ``HEAD``
(:func:`rtbuild.oci.manifest_exists`, bounded by :data:`BASE_CHECK_TIMEOUT_S`), so such a
registry is a :class:`~rtbuild.errors.RegistryError` naming it. Only a build whose bases
are missing pays for this: an exact hit has every base local and never gets here.

The check is left out where rtbuild's view of a registry may differ from the engine's
(a remote engine, a proxy or a Docker Hub mirror in dockerd): there the engine's own
answer stands, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rtbuild.errors import InvalidReferenceError, RegistryError

from .engine import EngineAPI

#: How long a base image's registry may take to answer the manifest ``HEAD``.
BASE_CHECK_TIMEOUT_S = 30.0


@dataclass
class _EngineRegistries:
    """What dockerd's ``/info`` says about how it reaches registries."""

    proxied: bool = False
    hub_mirrors: bool = False
    insecure: list[str] = field(default_factory=list)


def _local_engine(host: str) -> bool:
    """A unix socket, or TCP on loopback: the engine shares this machine's network view."""
    parts = urlsplit(host)
    if parts.scheme == "unix":
        return True
    if parts.scheme not in ("tcp", "http", "https"):
        return False  # ssh:// and the like: another machine
    from rtbuild.oci import is_loopback

    return is_loopback(parts.hostname or "")


def _engine_registries(api: EngineAPI) -> _EngineRegistries:
    _status, info = api.call("GET", "/info")  # over the socket, or the SDK for TLS and ssh://
    if not isinstance(info, dict):
        return _EngineRegistries()
    config = info.get("RegistryConfig") or {}
    indexes = config.get("IndexConfigs") or {}
    insecure = [str(name) for name, index in indexes.items() if isinstance(index, dict) and not index.get("Secure")]
    hub = indexes.get("docker.io") if isinstance(indexes.get("docker.io"), dict) else {}
    return _EngineRegistries(
        proxied=bool(info.get("HttpProxy") or info.get("HttpsProxy")),
        hub_mirrors=bool(config.get("Mirrors") or (hub or {}).get("Mirrors")),
        insecure=[*insecure, *(str(cidr) for cidr in config.get("InsecureRegistryCIDRs") or [])],
    )


def check_base_registries(api: EngineAPI, names: Iterable[str], insecure_registries: Sequence[str]) -> None:
    """Ask the registry of each image in ``names`` (bases that are not local) whether it
    has it; an unreachable or timing-out registry raises, naming the base image. A
    registry that answers (even "not found") lets the build go on: the engine says the rest.
    """
    missing = list(dict.fromkeys(names))
    if not missing or not _local_engine(api.host):
        return
    from rtbuild.oci import is_loopback, manifest_exists, parse_reference

    view: _EngineRegistries | None = None
    for name in missing:
        try:
            ref = parse_reference(name)
        except InvalidReferenceError:
            continue  # an unresolved ARG and the like: the engine's error says it best
        if view is None:
            view = _engine_registries(api)
        if (view.proxied and not is_loopback(ref.registry)) or (view.hub_mirrors and ref.registry == "docker.io"):
            continue  # dockerd goes another way than rtbuild would
        try:
            manifest_exists(
                ref,
                insecure_registries=[*insecure_registries, *view.insecure],
                timeout=BASE_CHECK_TIMEOUT_S,
            )
        except RegistryError as exc:
            raise type(exc)(
                f"base image {name} is not local and its registry cannot be asked: {exc.message}",
                step="check base image",
                log_tail=exc.log_tail,
                hint=exc.hint
                or f"check that the registry {ref.registry} is running and reachable, or make {name} local first",
            ) from exc


def check_dockerfile_bases(api: EngineAPI, dockerfile_text: str, spec: Any, insecure_registries: Sequence[str]) -> None:
    """:func:`check_base_registries` for a build that skipped the no-op check (so nothing
    inspected its bases yet): one engine round trip for them, then the missing ones."""
    from rtbuild.enginekit import analyse_cached

    bases = analyse_cached(dockerfile_text, spec.build_args, spec.platform).images
    if bases:
        absent = [name for name, info in api.inspect_images(bases).items() if info is None]
        check_base_registries(api, absent, insecure_registries)


__all__ = ["BASE_CHECK_TIMEOUT_S", "check_base_registries", "check_dockerfile_bases"]
