"""An unchanged multi-platform --push is a no-op when the registry holds exactly its result.

Before, every such request pushed each ``TAG-os-arch`` image and PUT every index again
(3 manifest PUTs and 11 registry requests for two platforms and one tag, measured). Now the
registry is read instead; never stale: a tampered index, a missing or extra platform, a
platform entry or ``TAG-os-arch`` from another build, a wrong descriptor or a missing layer
still push, and the registry then holds this build's images again.
No QEMU: FROM scratch images and COPY only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _mp_registry as reg
import pytest
from _registry_support import RecordingReporter, docker
from rtbuild import BuildRequest, BuildResult, RegistryError
from rtbuild._framework.progress import use_reporter
from rtbuild_docker import DockerBuilder

pytestmark = [pytest.mark.engine, pytest.mark.registry]

PLATFORMS = "linux/amd64,linux/arm64"


@pytest.fixture
def repo(docker_engine: str, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    name = registry.ref(f"rt-mp-noop-{uuid.uuid4().hex[:8]}")
    yield name
    listing = docker("images", "--format", "{{.Repository}}:{{.Tag}}", name, check=False).stdout.split()
    if listing:
        docker("rmi", "-f", *listing, check=False)


def _context(tmp_path: Path, name: str, text: str) -> Path:
    ctx = tmp_path / name
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    (ctx / "app").write_text(text)
    return ctx


def _build(ctx: Path, tags: list[str]) -> tuple[BuildResult, list[str]]:
    """The build's result and what it pushed (per-platform tags and indexes)."""
    reporter = RecordingReporter()
    with use_reporter(reporter):
        result = DockerBuilder().build_request(BuildRequest(path=str(ctx), tags=tags, platform=PLATFORMS, push=True))
    pushed = [f["image"] for kind, f in reporter.events if kind in ("push_started", "index_pushed")]
    return result, pushed


def test_an_unchanged_request_pushes_nothing_and_a_changed_one_pushes(repo: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "app", "one\n")
    tags = [f"{repo}:1", f"{repo}:stable"]
    first, pushed = _build(ctx, tags)
    assert len(pushed) == 6  # 2 platforms x 2 tags, 2 indexes
    again, pushed = _build(ctx, tags)
    assert pushed == []
    assert again.cached is True and again.details["registry_current"] is True
    assert again.details["index_digests"] == first.details["index_digests"]

    (ctx / "app").write_text("two\n")  # a different local image: its digests differ
    changed, pushed = _build(ctx, tags)
    assert len(pushed) == 6 and changed.details["registry_current"] is False
    assert changed.details["index_digests"] != first.details["index_digests"]


def _drop_arm64(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry["platform"]["architecture"] != "arm64"]


def _extra_platform(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    extra = json.loads(json.dumps(entries[0]))
    extra["platform"] = {"os": "linux", "architecture": "s390x"}
    return [*entries, extra]


def _wrong_size(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**entry, "size": entry["size"] + 1} for entry in entries]


def _swap(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """amd64 and arm64 name each other's manifest (each still a real image of this build)."""
    digests = [entry["digest"] for entry in entries]
    return [{**entry, "digest": digest} for entry, digest in zip(entries, reversed(digests), strict=True)]


def _tamper(kind: str, image: str, other: str) -> None:
    """Change what the registry holds under ``image`` (``other``: another build's index)."""
    if kind == "missing platform":
        reg.edit_index(image, _drop_arm64)
    elif kind == "extra platform":
        reg.edit_index(image, _extra_platform)
    elif kind == "wrong descriptor size":
        reg.edit_index(image, _wrong_size)
    elif kind == "platforms swapped":
        reg.edit_index(image, _swap)
    elif kind == "entry from another build":
        foreign = reg.entries(other)["arm64"]
        reg.edit_index(image, lambda es: [{**e, "digest": foreign} if "arm64" in str(e) else e for e in es])
    elif kind == "platform tag from another build":
        reg.copy_manifest(f"{other}-linux-arm64", f"{image}-linux-arm64")
    elif kind == "a single image under the tag":
        reg.copy_manifest(f"{image}-linux-amd64", image)
    elif kind == "missing layer":
        reg.delete_blob(image, reg.layers(f"{image}-linux-arm64")[0])
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "missing platform",
        "extra platform",
        "wrong descriptor size",
        "platforms swapped",
        "entry from another build",
        "platform tag from another build",
        "a single image under the tag",
        "missing layer",
    ],
)
def test_never_stale_a_registry_that_differs_is_pushed_again(kind: str, repo: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "app", "one\n")
    image, other = f"{repo}:1", f"{repo}:other"
    _build(_context(tmp_path, "other", "other\n"), [other])  # another build, same repository
    _build(ctx, [image])
    want = reg.entries(image)
    arm64_tag = reg.manifest(f"{image}-linux-arm64")[1]

    _tamper(kind, image, other)
    again, pushed = _build(ctx, [image])
    assert pushed == [f"{image}-linux-amd64", f"{image}-linux-arm64", image], kind
    assert again.details["registry_current"] is False
    assert reg.entries(image) == want
    assert reg.manifest(f"{image}-linux-arm64")[1] == arm64_tag
    assert all(reg.blob_there(image, layer) for layer in reg.layers(f"{image}-linux-arm64"))
    assert _build(ctx, [image])[1] == []  # and what it put there is current


def test_never_stale_an_unreadable_registry_answer_pushes(
    repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry check that fails (here: the index GET raises) is a push, not a skip."""
    import rtbuild.oci

    ctx = _context(tmp_path, "app", "one\n")
    _build(ctx, [f"{repo}:1"])
    real: Callable[..., Any] = rtbuild.oci.get_manifest
    calls = []

    def failing(client: Any, ref: Any) -> Any:
        calls.append(str(ref))
        raise RegistryError("boom", step="query registry")

    monkeypatch.setattr(rtbuild.oci, "get_manifest", failing)
    again, pushed = _build(ctx, [f"{repo}:1"])
    monkeypatch.setattr(rtbuild.oci, "get_manifest", real)
    assert calls and len(pushed) == 3 and again.details["registry_current"] is False


class Rebuilding(DockerBuilder):
    """Reports every platform as built now, not skipped: a build whose every step was cached
    can make the very image the registry holds (Podman's layer cache does; a --pull of an
    unchanged base too), which the check used to push again without asking."""

    def run(self, spec: Any) -> Any:
        from dataclasses import replace

        return replace(super().run(spec), cached=False)


def test_platforms_built_again_to_the_same_images_push_nothing(repo: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "app", "one\n")
    first, _ = _build(ctx, [f"{repo}:1"])
    reporter = RecordingReporter()
    with use_reporter(reporter):
        request = BuildRequest(path=str(ctx), tags=[f"{repo}:1"], platform=PLATFORMS, push=True)
        again = Rebuilding().build_request(request)
    assert [f["image"] for kind, f in reporter.events if kind in ("push_started", "index_pushed")] == []
    assert again.details["registry_current"] is True and again.cached is False
    assert again.details["index_digests"] == first.details["index_digests"]
