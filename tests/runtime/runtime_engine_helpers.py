"""Helpers for the runtime engine tests: docker inspection, cleanup, a counting builder."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from rtbuild._framework.config import Config
from rtbuild._framework.plugins import RtbuildPluginManager


def docker(cli: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli, *args], capture_output=True, text=True, check=check, timeout=600)


def inspect(cli: str, image: str) -> dict[str, Any] | None:
    proc = docker(cli, "image", "inspect", image, check=False)
    if proc.returncode != 0:
        return None
    data: list[dict[str, Any]] = json.loads(proc.stdout)
    return data[0]


def layers(cli: str, image: str) -> list[str]:
    data = inspect(cli, image)
    assert data is not None, f"{image} is not in the engine"
    return list(data["RootFS"]["Layers"])


def remove_repo(cli: str, repo: str) -> None:
    """Remove every local tag of ``repo`` (images our tests created)."""
    names = docker(cli, "images", "--format", "{{.Repository}}:{{.Tag}}", repo, check=False).stdout.split()
    if names:
        docker(cli, "rmi", "-f", *names, check=False)


def counting_builder(pm: RtbuildPluginManager, config: Config) -> tuple[Any, list[list[str]]]:
    """The configured docker builder, with every engine build (``run``) recorded by its tags."""
    builder = pm.create_builder("docker", config)
    runs: list[list[str]] = []
    original = builder.run

    def run(spec: Any) -> Any:
        runs.append(list(spec.tags))
        return original(spec)

    builder.run = run
    return builder, runs
