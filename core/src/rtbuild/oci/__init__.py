"""OCI references, the registry client and registry credentials: public helpers for builders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtbuild._lazy import lazy_exports

if TYPE_CHECKING:
    from rtbuild.oci._credentials import Credentials, get_credentials, load_docker_config
    from rtbuild.oci._references import DEFAULT_REGISTRY, Reference, parse_reference, split_domain
    from rtbuild.oci._registry import RegistryClient, is_insecure, is_loopback, manifest_exists

_NAMES = {
    "Credentials": "rtbuild.oci._credentials",
    "get_credentials": "rtbuild.oci._credentials",
    "load_docker_config": "rtbuild.oci._credentials",
    "DEFAULT_REGISTRY": "rtbuild.oci._references",
    "Reference": "rtbuild.oci._references",
    "parse_reference": "rtbuild.oci._references",
    "split_domain": "rtbuild.oci._references",
    "RegistryClient": "rtbuild.oci._registry",
    "is_insecure": "rtbuild.oci._registry",
    "is_loopback": "rtbuild.oci._registry",
    "manifest_exists": "rtbuild.oci._registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = [
    "DEFAULT_REGISTRY",
    "Credentials",
    "Reference",
    "RegistryClient",
    "get_credentials",
    "is_insecure",
    "is_loopback",
    "load_docker_config",
    "manifest_exists",
    "parse_reference",
    "split_domain",
]
