"""Podman: a multi-platform --push whose base the store holds for one platform only.

Buildah does not build arm64 from a local amd64 image: it pulls the arm64 one (and moves
the name onto it, so the next amd64 build pulls amd64 again). The skip counted the local
image's ID whatever its platform, so an unchanged request rebuilt a platform on most runs,
and after the base index moved in its registry the arm64 image was skipped as unchanged
(reproduced: /mark 'three' in the arm64 image after the base said 'four'). Now the registry's
image for the build's platform counts for such a base. No QEMU: FROM scratch and COPY only.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from _podman_support import PODMAN, Names, podman
from rtbuild import BuildRequest
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine, pytest.mark.registry]

PLATFORMS = "linux/amd64,linux/arm64"


def _mark(image: str, platform: str) -> str:
    container = podman("create", "--platform", platform, image, "/x").stdout.strip()
    try:
        tar = subprocess.run([PODMAN, "cp", f"{container}:/mark", "-"], capture_output=True, check=True, timeout=60)
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
            member = archive.extractfile("mark")
            assert member is not None
            return member.read().decode().strip()
    finally:
        podman("rm", "-f", container, check=False)


def test_podman_foreign_platform_base_is_skipped_when_unchanged_and_rebuilt_when_it_moves(
    podman_cli: str, names: Names, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    suffix = uuid.uuid4().hex[:8]
    base, app = registry.ref(f"rt-mp-pbase-{suffix}") + ":1", registry.ref(f"rt-mp-papp-{suffix}") + ":1"
    names.made += [base, app]
    base_ctx, app_ctx = tmp_path / "base", tmp_path / "app"
    base_ctx.mkdir()
    app_ctx.mkdir()
    (base_ctx / "Dockerfile").write_text("FROM scratch\nCOPY mark /mark\n")
    (base_ctx / "mark").write_text("one\n")
    (app_ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY app /app\n")
    (app_ctx / "app").write_text("app\n")

    def build(ctx: Path, tag: str) -> dict[str, bool]:
        builder.podman.forget()
        result = builder.build_request(BuildRequest(path=str(ctx), tags=[tag], platform=PLATFORMS, push=True))
        return {platform[6:]: bool(entry["cached"]) for platform, entry in result.details["platforms"].items()}

    build(base_ctx, base)
    podman("pull", "-q", "--tls-verify=false", "--platform", "linux/amd64", base)  # the store holds amd64
    build(app_ctx, app)
    assert build(app_ctx, app) == {"amd64": True, "arm64": True}
    assert build(app_ctx, app) == {"amd64": True, "arm64": True}

    (base_ctx / "mark").write_text("two\n")
    build(base_ctx, base)  # the base index moves; the store's amd64 copy stays
    assert build(app_ctx, app)["arm64"] is False
    assert _mark(f"{app}-linux-arm64", "linux/arm64") == "two"
    assert build(app_ctx, app) == {"amd64": True, "arm64": True}
    assert _mark(f"{app}-linux-arm64", "linux/arm64") == "two"
