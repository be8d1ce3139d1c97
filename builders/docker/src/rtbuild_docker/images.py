"""Images in registries: exists / pull / push (stub; the registry side replaces this module)."""

from __future__ import annotations

from typing import Any

from rtbuild.errors import EngineUnavailableError


def docker_client(docker_host: str | None = None) -> Any:
    """A docker SDK client (imported lazily); an unreachable engine is EngineUnavailableError."""
    import docker

    try:
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
        client.ping()
    except Exception as exc:
        raise EngineUnavailableError(f"cannot reach the Docker engine: {exc}", step="connect to engine") from exc
    return client


def image_exists(image_name: str, pull_from_repo: bool, *, docker_host: str | None = None) -> bool:
    import docker.errors

    client = docker_client(docker_host)
    try:
        client.images.get(image_name)
        return True
    except docker.errors.ImageNotFound:
        return False


def push_image(image: str, *, docker_host: str | None = None) -> None:
    client = docker_client(docker_host)
    client.images.push(image)
