"""``image_exists`` for Podman: local first, then a registry HEAD, then a pull on demand.

With a requested platform, a local image of another platform does not count, and a
registry index lacking the platform is absent (:func:`rtbuild.oci.has_platforms`).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import rtbuild
from rtbuild.enginekit import split_platforms
from rtbuild.oci import RegistryClient, has_platforms, normalize_platform, parse_reference

from .auth import find_credentials

if TYPE_CHECKING:
    from .builder import PodmanBuilder

_IMAGE_ID = re.compile(r"(sha256:)?[a-f0-9]{64}")


def _platform_of(doc: dict[str, Any]) -> str:
    parts = (doc.get("Os"), doc.get("Architecture"), doc.get("Variant"))
    return normalize_platform("/".join(str(p) for p in parts if p))


def _local(builder: PodmanBuilder, name: str, platforms: list[str]) -> bool:
    doc = builder.podman.inspect_image(name)
    if doc is None:
        return False
    return not platforms or (len(platforms) == 1 and _platform_of(doc) == normalize_platform(platforms[0]))


def warn_foreign_base_images(builder: PodmanBuilder, request: rtbuild.BuildRequest, dockerfile: str) -> None:
    """After a build for one named platform: warn about a base image Buildah built it from
    although it is another platform's (:func:`rtbuild.enginekit.warn_foreign_bases`;
    Buildah's own warning is one line in the log)."""
    from rtbuild.enginekit import analyse_cached, warn_foreign_bases

    from .build import build_args_of

    with open(dockerfile, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    bases = analyse_cached(text, build_args_of(request), request.platform).images

    def local_platform(name: str) -> str | None:
        doc = builder.podman.inspect_image(name)
        return _platform_of(doc) if doc is not None else None

    assert request.platform is not None
    warn_foreign_bases(
        text,
        bases,
        request.platform,
        local_platform,
        insecure_registries=builder.insecure_registries,
        credentials=find_credentials,
    )


def _no_credentials(registry: str, exc: rtbuild.RegistryAuthError) -> rtbuild.RegistryAuthError:
    """``exc`` as a Podman user reads it: with no credentials found, where rtbuild looked
    (Podman's auth files before the docker config) and ``podman login``; with refused ones
    from a Podman auth file, ``podman login``. (The core's names only the docker config and
    ``docker login``.)"""
    from .auth import auth_files

    if exc.step != "authenticate to registry":
        return exc
    creds = find_credentials(registry)
    if creds is not None:
        if creds.source not in {str(path) for path in auth_files()}:
            return exc  # the docker config's: `docker login` it is
        return rtbuild.RegistryAuthError(
            exc.message, step=exc.step, hint=f"check the user name and password with `podman login {registry}`"
        )
    config = os.environ.get("DOCKER_CONFIG") or "~/.docker"
    looked = ", ".join([*(str(path) for path in auth_files()), f"{config}/config.json"])
    return rtbuild.RegistryAuthError(
        f"registry {registry} requires authentication and no credentials for it were found in {looked}",
        step=exc.step,
        hint=f"run `podman login {registry}` (or `docker login {registry}`)",
    )


def image_exists(
    builder: PodmanBuilder, name: str, pull_from_repo: bool = True, *, platform: str | None = None
) -> bool:
    """Whether ``name`` is available to Podman (see the module docstring). A missing image
    is ``False``; registry or engine trouble raises."""
    platforms = split_platforms(platform)
    if _IMAGE_ID.fullmatch(name):  # an image ID exists only locally
        return builder.podman.inspect_image(name) is not None
    if _local(builder, name, platforms):
        return True
    if not pull_from_repo:
        return False
    ref = parse_reference(name)
    if ref.registry == "localhost":
        # Podman's own name for what it built without a registry (`-t app:1` is
        # localhost/app:1): local only. Asking https://localhost made "absent" a failure to
        # reach a registry nobody runs (exit 3).
        rtbuild.get_reporter().event("not_found", image=name, registry=ref.registry, platform=platform)
        return False
    client = RegistryClient(insecure_registries=builder.insecure_registries, credentials=find_credentials)
    try:
        present = has_platforms(client, ref, platforms) if platforms else client.manifest_exists(ref)
    except rtbuild.RegistryAuthError as exc:
        raise _no_credentials(ref.registry, exc) from exc
    if not present:
        rtbuild.get_reporter().event("not_found", image=name, registry=ref.registry, platform=platform)
        return False
    if len(platforms) > 1:
        # One local tag holds one platform: the registry holding all of them is the answer.
        return True
    builder.podman.pull(name, platform=platforms[0] if platforms else None)
    return _local(builder, name, platforms)


__all__ = ["image_exists", "warn_foreign_base_images"]
