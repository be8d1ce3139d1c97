"""OCI references, the registry client and registry credentials: public helpers for builders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtbuild._lazy import lazy_exports

if TYPE_CHECKING:
    from rtbuild._framework.config import insecure_registries_problem
    from rtbuild.oci._credentials import Credentials, get_credentials, load_docker_config
    from rtbuild.oci._index import (
        DOCKER_LIST,
        DOCKER_MANIFEST,
        OCI_INDEX,
        OCI_MANIFEST,
        Manifest,
        PlatformManifest,
        describe,
        get_manifest,
        has_platforms,
        normalize_platform,
        platform_tag,
        platforms_of,
        push_index,
    )
    from rtbuild.oci._references import DEFAULT_REGISTRY, Reference, parse_reference, split_domain
    from rtbuild.oci._registry import RegistryClient, is_insecure, is_loopback, manifest_exists

_NAMES = {
    "DOCKER_LIST": "rtbuild.oci._index",
    "DOCKER_MANIFEST": "rtbuild.oci._index",
    "OCI_INDEX": "rtbuild.oci._index",
    "OCI_MANIFEST": "rtbuild.oci._index",
    "Manifest": "rtbuild.oci._index",
    "PlatformManifest": "rtbuild.oci._index",
    "describe": "rtbuild.oci._index",
    "get_manifest": "rtbuild.oci._index",
    "has_platforms": "rtbuild.oci._index",
    "normalize_platform": "rtbuild.oci._index",
    "platform_tag": "rtbuild.oci._index",
    "platforms_of": "rtbuild.oci._index",
    "push_index": "rtbuild.oci._index",
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
    # the check of the core's own insecure_registries, for a builder's table of the same name
    "insecure_registries_problem": "rtbuild._framework.config",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = [
    "DEFAULT_REGISTRY",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Credentials",
    "Manifest",
    "PlatformManifest",
    "Reference",
    "RegistryClient",
    "describe",
    "get_credentials",
    "get_manifest",
    "has_platforms",
    "insecure_registries_problem",
    "is_insecure",
    "is_loopback",
    "load_docker_config",
    "manifest_exists",
    "normalize_platform",
    "parse_reference",
    "platform_tag",
    "platforms_of",
    "push_index",
    "split_domain",
]
