"""An unchanged single-platform --push is a no-op when the registry holds exactly this image.

Before, every --push ran `docker push`, even of an image the no-op skip had just found
unchanged: a push_started event, a HEAD per blob and a manifest PUT each time (7 requests
for a 4-layer image, measured). Now the registry is read instead (the tag's manifest, its
config blob, a HEAD per layer: 6 requests, no write) and nothing is pushed when the tag names
an image whose config is the local image byte for byte with every layer there (asked for a
skipped build only: BuildKit gives each build a new image). Never stale:
another image under the tag, an index, a missing layer, a registry that refuses the login or
cannot be reached still push (and the push's own error stands). No QEMU: FROM scratch, COPY.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _mp_registry as reg
import pytest
from _registry_support import RecordingReporter, closed_port, docker, docker_config
from rtbuild import BuildRequest, BuildResult, BuildSession
from rtbuild._framework.progress import use_reporter
from rtbuild.errors import AgentRuntimeBuildError

pytestmark = [pytest.mark.engine, pytest.mark.registry]


@pytest.fixture
def names(docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Image names the test made (removed from the engine afterwards)."""
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    made: list[str] = []
    yield made
    for name in made:
        listing = docker("images", "--format", "{{.Repository}}:{{.Tag}}", name, check=False).stdout.split()
        if listing:
            docker("rmi", "-f", *listing, check=False)


def _context(tmp_path: Path, name: str, text: str) -> Path:
    ctx = tmp_path / name
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY app /app\nCOPY more /more\n")
    (ctx / "app").write_text(text)
    (ctx / "more").write_text("more\n")
    return ctx


def _build(ctx: Path, tags: list[str]) -> tuple[BuildResult, list[str], list[str]]:
    """The result, the tags `docker push` ran for, and the kinds of push events."""
    reporter = RecordingReporter()
    with use_reporter(reporter), BuildSession() as session:
        result = session.build(BuildRequest(path=str(ctx), tags=tags, push=True, builder="docker"))
    pushed = [str(f["image"]) for kind, f in reporter.events if kind == "push_started"]
    kinds = [kind for kind, _ in reporter.events if kind in ("registry_current", "push_needed", "push_skipped")]
    return result, pushed, kinds


def _config_digest(image: str) -> str:
    _, _, data = reg.manifest(image)
    return str(json.loads(data)["config"]["digest"])


def test_an_unchanged_push_pushes_nothing_and_a_changed_one_pushes(
    names: list[str], registry: Any, tmp_path: Path
) -> None:
    repo = registry.ref(f"rt-single-noop-{uuid.uuid4().hex[:8]}")
    names.append(repo)
    ctx = _context(tmp_path, "app", "one\n")
    tags = [f"{repo}:1", f"{repo}:stable"]
    first, pushed, kinds = _build(ctx, tags)
    assert pushed == tags and kinds == [] and "registry_current" not in first.details  # built: not asked
    again, pushed, kinds = _build(ctx, tags)
    assert pushed == [] and kinds == ["registry_current"]
    assert again.cached is True and again.details["pushed"] is True and again.details["registry_current"] is True
    assert set(again.details["registry_digests"]) == set(tags)
    assert _config_digest(tags[0]) == again.details["image_id"]

    (ctx / "app").write_text("two\n")  # another local image: the registry's is not it
    changed, pushed, kinds = _build(ctx, tags)
    assert pushed == tags and kinds == [] and "registry_current" not in changed.details
    assert _config_digest(tags[1]) == changed.details["image_id"] != again.details["image_id"]


def _index_over(image: str) -> None:
    """Put an index naming the tag's own manifest under the tag (a manifest list, not the image)."""
    media_type, digest, data = reg.manifest(image)
    entry = {"mediaType": media_type, "digest": digest, "size": len(data)}
    entry["platform"] = {"os": "linux", "architecture": "amd64"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [entry]}
    reg.put_manifest(image, "application/vnd.oci.image.index.v1+json", json.dumps(index).encode())


@pytest.mark.parametrize("kind", ["another image under the tag", "an index under the tag", "missing layer"])
def test_never_stale_a_registry_that_differs_is_pushed_again(
    kind: str, names: list[str], registry: Any, tmp_path: Path
) -> None:
    repo = registry.ref(f"rt-single-noop-{uuid.uuid4().hex[:8]}")
    names.append(repo)
    image, other = f"{repo}:1", f"{repo}:other"
    ctx = _context(tmp_path, "app", "one\n")
    built, _, _ = _build(ctx, [image])
    if kind == "another image under the tag":
        _build(_context(tmp_path, "other", "other\n"), [other])
        reg.copy_manifest(other, image)
    elif kind == "an index under the tag":
        _index_over(image)
    else:
        reg.delete_blob(image, reg.layers(image)[-1])
    again, pushed, kinds = _build(ctx, [image])
    assert pushed == [image] and kinds == ["push_needed"], kind
    assert again.details["registry_current"] is False and again.details["pushed"] is True
    assert _config_digest(image) == built.details["image_id"]
    assert all(reg.blob_there(image, layer) for layer in reg.layers(image))
    assert _build(ctx, [image])[1] == []  # and what it put there is current


def test_never_stale_a_refused_login_or_a_registry_down_pushes(
    names: list[str], auth_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = auth_registry.ref(f"rt-single-noop-{uuid.uuid4().hex[:8]}")
    names.append(repo)
    ctx = _context(tmp_path, "app", "one\n")
    good = docker_config(tmp_path / "good", {auth_registry.host: (auth_registry.username, auth_registry.password)})
    monkeypatch.setenv("DOCKER_CONFIG", str(good))
    _build(ctx, [f"{repo}:1"])
    assert _build(ctx, [f"{repo}:1"])[1] == []  # with the login, the registry's image is read: current

    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    reporter = RecordingReporter()
    with use_reporter(reporter), BuildSession() as session, pytest.raises(AgentRuntimeBuildError) as refused:
        session.build(BuildRequest(path=str(ctx), tags=[f"{repo}:1"], push=True, builder="docker"))
    assert refused.value.step == "push"  # the push ran (and the registry refused it): never 'current'
    assert [kind for kind, _ in reporter.events if kind == "push_started"] == ["push_started"]

    down = f"127.0.0.1:{closed_port()}/rt-single-noop:1"
    names.append(down.rsplit(":", 1)[0])
    docker("tag", f"{repo}:1", down)  # the build is skipped, so the check runs (and cannot connect)
    with use_reporter(reporter), BuildSession() as session, pytest.raises(AgentRuntimeBuildError) as unreachable:
        session.build(BuildRequest(path=str(ctx), tags=[down], push=True, builder="docker"))
    assert unreachable.value.step == "push"
    assert [kind for kind, f in reporter.events if f.get("image") == down][:2] == ["cached", "push_needed"]
