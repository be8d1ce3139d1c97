"""Podman: an unchanged multi-platform --push pushes nothing when the registry holds exactly
its result (Podman pushes OCI manifests and indexes; its image IDs are its configs' digests
without the ``sha256:`` prefix). Never stale: a tampered index or a ``TAG-os-arch`` from
another build is pushed again. No QEMU: FROM scratch images and COPY only.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import _mp_registry as reg
import pytest
from _podman_support import Names
from rtbuild import BuildRequest, BuildResult
from rtbuild._framework.progress import Reporter, use_reporter
from rtbuild_podman import PodmanBuilder

pytestmark = [pytest.mark.engine, pytest.mark.registry]

PLATFORMS = "linux/amd64,linux/arm64"


class _Events(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


def _build(builder: PodmanBuilder, ctx: Path, tags: list[str]) -> tuple[BuildResult, list[str]]:
    """The build's result and what it pushed (per-platform tags and indexes)."""
    reporter = _Events()
    with use_reporter(reporter):
        result = builder.build_request(BuildRequest(path=str(ctx), tags=tags, platform=PLATFORMS, push=True))
    pushed = [f["image"] for kind, f in reporter.events if kind in ("push_started", "index_pushed")]
    return result, pushed


def _context(tmp_path: Path, name: str, text: str) -> Path:
    ctx = tmp_path / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    (ctx / "app").write_text(text)
    return ctx


@pytest.mark.parametrize("tamper", ["none", "missing platform", "platform tag from another build"])
def test_podman_unchanged_push_is_a_no_op_unless_the_registry_differs(
    tamper: str, podman_cli: str, names: Names, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    repo = registry.ref(f"rt-mp-podman-noop-{uuid.uuid4().hex[:8]}")
    image, other = f"{repo}:1", f"{repo}:other"
    names.made += [image, other]
    ctx = _context(tmp_path, "app", "one\n")
    _build(builder, _context(tmp_path, "other", "other\n"), [other])
    _build(builder, ctx, [image])
    want = reg.entries(image)

    if tamper == "missing platform":
        reg.edit_index(image, lambda es: [e for e in es if e["platform"]["architecture"] != "arm64"])
    elif tamper == "platform tag from another build":
        reg.copy_manifest(f"{other}-linux-arm64", f"{image}-linux-arm64")
    again, pushed = _build(builder, ctx, [image])
    if tamper == "none":
        assert pushed == [] and again.cached is True and again.details["registry_current"] is True
    else:
        assert pushed == [f"{image}-linux-amd64", f"{image}-linux-arm64", image]
        assert again.details["registry_current"] is False
        assert reg.manifest(f"{image}-linux-arm64")[1] == want["arm64"]
    assert reg.entries(image) == want


def test_podman_forced_rebuild_to_the_same_images_pushes_nothing(
    podman_cli: str, names: Names, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--force builds every platform again; Podman's layer cache makes the same images (same
    IDs), which the registry holds: the check used to be skipped for a built platform, so
    each forced run pushed both platform images and the index again."""
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    image = registry.ref(f"rt-mp-podman-force-{uuid.uuid4().hex[:8]}") + ":1"
    names.made.append(image)
    ctx = _context(tmp_path, "app", "one\n")
    first, _ = _build(builder, ctx, [image])
    reporter = _Events()
    with use_reporter(reporter):
        request = BuildRequest(path=str(ctx), tags=[image], platform=PLATFORMS, push=True, force=True)
        again = builder.build_request(request)
    assert not any(entry["cached"] for entry in again.details["platforms"].values())  # built, not skipped
    assert [f["image"] for kind, f in reporter.events if kind in ("push_started", "index_pushed")] == []
    assert again.details["registry_current"] is True
    assert again.details["index_digests"] == first.details["index_digests"]
