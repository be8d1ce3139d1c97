"""A multi-platform push whose base image the engine holds locally for one platform only.

BuildKit uses a local image only for the platform it builds; for another platform it
reads the base from its registry. The no-op skip took the local (native) image's ID as the
base's input for every platform, so after the base's index moved in its registry the
foreign platform was skipped as unchanged and its old image pushed under the index again
(reproduced: /mark in the arm64 image still said 'one' after the base said 'two').
No QEMU: FROM scratch images and COPY only.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _registry_support import DOCKER, docker, run_cli

pytestmark = [pytest.mark.engine, pytest.mark.registry]

PLATFORMS = "linux/amd64,linux/arm64"


@pytest.fixture
def names(docker_engine: str, registry: Any) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    base, app = registry.ref(f"rt-mp-base-{suffix}"), registry.ref(f"rt-mp-app-{suffix}")
    yield base, app
    listing = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    mine = [name for name in listing if name.startswith((base + ":", app + ":"))]
    if mine:
        docker("rmi", "-f", *mine, check=False)


def _build(ctx: Path, tag: str, tmp_path: Path) -> dict[str, Any]:
    proc = run_cli(
        "build", str(ctx), "-t", tag, "--platform", PLATFORMS, "--push", "--builder", "docker", "--json", "-q",
        cwd=tmp_path, docker_config_dir=tmp_path / "docker-config",
        extra_env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _mark(image: str, platform: str) -> str:
    docker("pull", "-q", "--platform", platform, image)
    container = docker("create", "--platform", platform, image, "/x").stdout.strip()
    try:
        tar = subprocess.run([DOCKER, "cp", f"{container}:/mark", "-"], capture_output=True, check=True, timeout=60)
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
            member = archive.extractfile("mark")
            assert member is not None
            return member.read().decode().strip()
    finally:
        docker("rm", "-f", container, check=False)


def test_a_foreign_platform_whose_base_moved_in_its_registry_is_built_again(
    names: tuple[str, str], tmp_path: Path
) -> None:
    base, app = names
    (tmp_path / "docker-config").mkdir()
    base_ctx, app_ctx = tmp_path / "base", tmp_path / "app"
    base_ctx.mkdir()
    app_ctx.mkdir()
    (base_ctx / "Dockerfile").write_text("FROM scratch\nCOPY mark /mark\n")
    (base_ctx / "mark").write_text("one\n")
    _build(base_ctx, f"{base}:1", tmp_path)
    docker("pull", "-q", "--platform", "linux/amd64", f"{base}:1")  # the engine holds the amd64 one
    (app_ctx / "Dockerfile").write_text(f"FROM {base}:1\nCOPY app /app\n")
    (app_ctx / "app").write_text("app\n")
    _build(app_ctx, f"{app}:1", tmp_path)
    assert _mark(f"{app}:1-linux-arm64", "linux/arm64") == "one"

    # The base's index moves in its registry; the engine's local amd64 copy (what BuildKit
    # builds amd64 from) stays as it was: a --push build tags only BASE:1-linux-* locally.
    (base_ctx / "mark").write_text("two\n")
    _build(base_ctx, f"{base}:1", tmp_path)

    again = _build(app_ctx, f"{app}:1", tmp_path)
    assert again["details"]["platforms"]["linux/arm64"]["cached"] is False
    assert _mark(f"{app}:1-linux-arm64", "linux/arm64") == "two"


def test_a_foreign_platform_on_an_unchanged_base_is_skipped_and_rebuilt_when_it_moves(
    names: tuple[str, str], tmp_path: Path
) -> None:
    """The skip counts the registry's image of the base for the foreign platform (its config
    digest), so it is back for arm64 (e92ebd8 built it every time) and still follows the base."""
    base, app = names
    (tmp_path / "docker-config").mkdir()
    base_ctx, app_ctx = tmp_path / "base", tmp_path / "app"
    base_ctx.mkdir()
    app_ctx.mkdir()
    (base_ctx / "Dockerfile").write_text("FROM scratch\nCOPY mark /mark\n")
    (base_ctx / "mark").write_text("one\n")
    _build(base_ctx, f"{base}:1", tmp_path)
    docker("pull", "-q", "--platform", "linux/amd64", f"{base}:1")
    (app_ctx / "Dockerfile").write_text(f"FROM {base}:1\nCOPY app /app\n")
    (app_ctx / "app").write_text("app\n")
    _build(app_ctx, f"{app}:1", tmp_path)

    def cached() -> dict[str, bool]:
        details = _build(app_ctx, f"{app}:1", tmp_path)["details"]
        return {platform: entry["cached"] for platform, entry in details["platforms"].items()}

    assert cached() == {"linux/amd64": True, "linux/arm64": True}
    (base_ctx / "mark").write_text("two\n")
    _build(base_ctx, f"{base}:1", tmp_path)  # the base index moves; the local amd64 copy stays
    assert cached() == {"linux/amd64": True, "linux/arm64": False}
    assert _mark(f"{app}:1-linux-arm64", "linux/arm64") == "two"
    assert cached() == {"linux/amd64": True, "linux/arm64": True}
    assert _mark(f"{app}:1-linux-arm64", "linux/arm64") == "two"


def test_the_foreign_platforms_onbuild_triggers_are_read_from_the_registry(
    names: tuple[str, str], tmp_path: Path
) -> None:
    """The registry's config, not the local image's, says what a foreign platform's build
    runs: an ONBUILD ADD <url> there (what the digest cannot see) turns the skip off for
    that platform, although the local (amd64) copy has no trigger."""
    base, app = names
    (tmp_path / "docker-config").mkdir()
    base_ctx, app_ctx = tmp_path / "base", tmp_path / "app"
    base_ctx.mkdir()
    app_ctx.mkdir()
    (base_ctx / "Dockerfile").write_text("FROM scratch\nCOPY mark /mark\n")
    (base_ctx / "mark").write_text("one\n")
    _build(base_ctx, f"{base}:1", tmp_path)
    docker("pull", "-q", "--platform", "linux/amd64", f"{base}:1")  # no trigger here
    url = f"http://{base.split('/')[0]}/v2/"  # the test registry: the engine fetches it
    (base_ctx / "Dockerfile").write_text(f"FROM scratch\nCOPY mark /mark\nONBUILD ADD {url} /v2.json\n")
    _build(base_ctx, f"{base}:1", tmp_path)  # the registry's has one
    (app_ctx / "Dockerfile").write_text(f"FROM {base}:1\nCOPY app /app\n")
    (app_ctx / "app").write_text("app\n")
    _build(app_ctx, f"{app}:1", tmp_path)
    again = _build(app_ctx, f"{app}:1", tmp_path)["details"]["platforms"]
    assert again["linux/amd64"]["cached"] is True
    assert again["linux/arm64"]["cached"] is False


def test_a_stage_naming_the_local_platform_follows_the_local_base(names: tuple[str, str], tmp_path: Path) -> None:
    """FROM --platform=linux/amd64 in the arm64 build uses the local amd64 base: re-tagging
    it locally (the registry unchanged) builds arm64 again, although the registry's arm64
    image of the base, which the skip also counts, did not move."""
    base, app = names
    (tmp_path / "docker-config").mkdir()
    base_ctx, app_ctx = tmp_path / "base", tmp_path / "app"
    base_ctx.mkdir()
    app_ctx.mkdir()
    (base_ctx / "Dockerfile").write_text("FROM scratch\nCOPY mark /mark\n")
    (base_ctx / "mark").write_text("one\n")
    _build(base_ctx, f"{base}:1", tmp_path)
    docker("pull", "-q", "--platform", "linux/amd64", f"{base}:1")
    (app_ctx / "Dockerfile").write_text(
        f"FROM --platform=linux/amd64 {base}:1 AS b\nFROM scratch\nCOPY --from=b /mark /mark\n"
    )
    _build(app_ctx, f"{app}:1", tmp_path)
    assert _build(app_ctx, f"{app}:1", tmp_path)["details"]["platforms"]["linux/arm64"]["cached"] is True

    (base_ctx / "mark").write_text("local\n")
    docker("build", "-q", "--platform", "linux/amd64", "-t", f"{base}:1", str(base_ctx))  # local only
    again = _build(app_ctx, f"{app}:1", tmp_path)["details"]["platforms"]
    assert again["linux/arm64"]["cached"] is False
    assert _mark(f"{app}:1-linux-arm64", "linux/arm64") == "local"
