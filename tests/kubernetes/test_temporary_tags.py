"""The temporary per-platform tags of a multi-platform build are removed once the index is
pushed, and the index stays whole: checked against Debian's docker-registry (distribution
2.8), with deletion enabled and disabled; after a failed build, those that were pushed.

Why the removal moves each tag onto a placeholder first: distribution 2.x refuses a tag in
``DELETE /v2/<name>/manifests/<reference>`` (400 DIGEST_INVALID), and deleting the platform
manifest by its digest would delete what the index references (the first test shows both).
Deleting a manifest also removes the tags that name it, so each tag is moved onto an empty
index of its own, which is then deleted by digest."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rtbuild import Reporter
from rtbuild._framework.progress import use_reporter
from rtbuild.oci import parse_reference
from rtbuild_kubernetes.index import discard_temporary_tags, remove_temporary_tags
from rtbuild_kubernetes.registry_ops import OCI_INDEX, OCI_MANIFEST, RegistryOps

pytestmark = [pytest.mark.registry, pytest.mark.timeout(120)]
REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


class Recording(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


def _start(root: Path, delete: bool) -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    root.mkdir(parents=True)
    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"  delete:\n    enabled: {str(delete).lower()}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL)
    for _ in range(300):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return f"127.0.0.1:{port}", proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("docker-registry did not listen")


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, str]]:
    """``{True: host with deletion enabled, False: host with deletion disabled}``."""
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("Debian's docker-registry is not installed")
    root = tmp_path_factory.mktemp("temporary-tags")
    started = {delete: _start(root / str(delete), delete) for delete in (True, False)}
    yield {delete: host for delete, (host, _) in started.items()}
    for _, proc in started.values():
        proc.terminate()
        proc.wait(timeout=10)


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _push_two_platforms(host: str, repo: str) -> tuple[list[str], dict[str, str], str]:
    """Two platform images under temporary tags, as the Jobs push them, and an index under
    ``:1``: (temporary tags, {tag: manifest digest}, index digest)."""
    ops = RegistryOps()
    ref = parse_reference(f"{host}/{repo}:1")
    layer = b"layer of " + repo.encode()
    ops.upload_blob(ref, _digest(layer), io.BytesIO(layer), len(layer))
    tags, digests, entries = [], {}, []
    for arch in ("amd64", "arm64"):
        config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers"}}).encode()
        ops.upload_blob(ref, _digest(config), io.BytesIO(config), len(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": len(config),
                "digest": _digest(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer), "digest": _digest(layer)}
            ],
        }
        body = json.dumps(manifest).encode()
        tag = f"{host}/{repo}:rtbuild-b0123456789-linux-{arch}"
        digests[tag] = ops.put_manifest(parse_reference(tag), parse_reference(tag).tag or "", OCI_MANIFEST, body)
        tags.append(tag)
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digests[tag],
                "size": len(body),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return tags, digests, ops.put_manifest(ref, "1", OCI_INDEX, index)


def _tags(host: str, repo: str) -> list[str]:
    return sorted(httpx.get(f"http://{host}/v2/{repo}/tags/list").json()["tags"] or [])


def _status(host: str, repo: str, reference: str) -> int:
    accept = f"{OCI_MANIFEST}, {OCI_INDEX}"
    return httpx.get(f"http://{host}/v2/{repo}/manifests/{reference}", headers={"Accept": accept}).status_code


def test_this_registry_deletes_no_tag_and_a_digest_delete_breaks_the_index(registries: dict[bool, str]) -> None:
    host = registries[True]
    tags, digests, _ = _push_two_platforms(host, "team/naive")
    tag = tags[0]
    by_tag = httpx.delete(f"http://{host}/v2/team/naive/manifests/{parse_reference(tag).tag}")
    assert by_tag.status_code == 400 and "DIGEST_INVALID" in by_tag.text  # no tag deletion in 2.x
    assert httpx.delete(f"http://{host}/v2/team/naive/manifests/{digests[tag]}").status_code == 202
    assert _status(host, "team/naive", "1") == 200
    assert _status(host, "team/naive", digests[tag]) == 404  # the index now names a missing image
    assert parse_reference(tag).tag not in _tags(host, "team/naive")  # the tag went with it


def test_temporary_tags_go_and_the_index_stays_whole(registries: dict[bool, str]) -> None:
    host = registries[True]
    tags, digests, index = _push_two_platforms(host, "team/app")
    assert _tags(host, "team/app") == sorted(["1", *(parse_reference(t).tag or "" for t in tags)])
    reporter = Recording()
    with use_reporter(reporter):
        assert remove_temporary_tags(RegistryOps(), tags) == []
    assert _tags(host, "team/app") == ["1"]
    assert _status(host, "team/app", "1") == 200 and _status(host, "team/app", index) == 200
    for digest in digests.values():
        assert _status(host, "team/app", digest) == 200  # what the index references is all there
    assert [kind for kind, _ in reporter.events if kind == "warning"] == []


def test_a_registry_without_deletion_keeps_them_and_one_warning_names_them(registries: dict[bool, str]) -> None:
    host = registries[False]
    tags, digests, _ = _push_two_platforms(host, "team/kept")
    reporter = Recording()
    with use_reporter(reporter):
        assert remove_temporary_tags(RegistryOps(), tags) == tags  # and no exception: the build stands
    warnings = [fields for kind, fields in reporter.events if kind == "warning"]
    assert len(warnings) == 1 and warnings[0]["tags"] == tags
    assert all(tag in warnings[0]["message"] for tag in tags)
    assert "HTTP 405 UNSUPPORTED" in warnings[0]["message"]
    # Untouched: each tag still names its platform image (the refusal came before any change).
    for tag, digest in digests.items():
        assert _status(host, "team/kept", parse_reference(tag).tag or "") == 200
        head = httpx.head(
            f"http://{host}/v2/team/kept/manifests/{parse_reference(tag).tag}", headers={"Accept": OCI_MANIFEST}
        )
        assert head.headers["Docker-Content-Digest"] == digest


def test_an_unreachable_registry_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: refused
    tags = [f"{dead}/team/app:rtbuild-b1-linux-amd64", f"{dead}/team/app:rtbuild-b1-linux-arm64"]
    reporter = Recording()
    with use_reporter(reporter):
        assert remove_temporary_tags(RegistryOps(), tags) == tags
    (warning,) = [fields for kind, fields in reporter.events if kind == "warning"]
    assert "unreachable" in warning["message"]


@pytest.mark.parametrize(("code", "said"), [(500, "HTTP 500"), (403, "refused DELETE team/app (HTTP 403)")])
def test_a_delete_refused_after_the_move_puts_the_tag_back(code: int, said: str) -> None:
    from _scripted_registry import Request, scripted

    original = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()
    deletes: list[str] = []

    def handler(request: Request) -> tuple[int, bytes | dict[str, Any], dict[str, str]]:
        if request.method == "DELETE":
            deletes.append(request.path)  # the probe passes (404), the real delete fails
            return (404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}, {}) if len(deletes) == 1 else (code, b"", {})
        if request.method == "GET":
            return 200, original, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": _digest(original)}
        return 201, b"", {}

    with scripted(handler) as registry:
        tag = f"{registry.address}/team/app:rtbuild-b1-linux-amd64"
        reporter = Recording()
        with use_reporter(reporter):
            assert remove_temporary_tags(RegistryOps(), [tag]) == [tag]
    puts = [r for r in registry.log if r.method == "PUT"]
    assert [p.path for p in puts] == ["/v2/team/app/manifests/rtbuild-b1-linux-amd64"] * 2
    placeholder = json.loads(puts[0].body)
    assert placeholder["manifests"] == [] and placeholder["annotations"] == {"org.rtbuild.temporary-tag": tag}
    assert deletes == [f"/v2/team/app/manifests/{_digest(puts[0].body)}"] * 2  # only ever the placeholder
    assert (puts[1].body, puts[1].headers["Content-Type"]) == (original, OCI_MANIFEST)  # the tag as it was
    (warning,) = [fields for kind, fields in reporter.events if kind == "warning"]
    assert said in warning["message"]


def test_after_a_failure_the_pushed_tags_go_and_an_absent_one_costs_no_warning(registries: dict[bool, str]) -> None:
    host = registries[True]
    tags, digests, _ = _push_two_platforms(host, "team/failed")
    never = f"{host}/team/failed:rtbuild-b0123456789-linux-s390x"  # its Job had not pushed
    reporter = Recording()
    with use_reporter(reporter):
        assert discard_temporary_tags(RegistryOps(), [*tags, never], budget_s=30) == []
    assert _tags(host, "team/failed") == ["1"]
    assert all(_status(host, "team/failed", digest) == 200 for digest in digests.values())  # images stay
    assert [kind for kind, _ in reporter.events if kind == "warning"] == []


def test_a_failed_build_that_pushed_nothing_warns_of_nothing_where_deletes_are_refused(
    registries: dict[bool, str],
) -> None:
    host = registries[False]  # would answer the delete probe 405: the tag is looked up first
    tags = [f"{host}/team/none:rtbuild-b0123456789-linux-{arch}" for arch in ("amd64", "arm64")]
    reporter = Recording()
    with use_reporter(reporter):
        assert discard_temporary_tags(RegistryOps(), tags, budget_s=30) == []
    assert reporter.events == []


def test_a_tag_whose_pod_had_not_stopped_is_named_as_possibly_pushed_later(registries: dict[bool, str]) -> None:
    host = registries[True]
    tags, _, _ = _push_two_platforms(host, "team/late")
    reporter = Recording()
    with use_reporter(reporter):
        assert discard_temporary_tags(RegistryOps(), tags, budget_s=30, settle=lambda: tags[1:]) == tags[1:]
    assert _tags(host, "team/late") == ["1"]  # removed all the same
    (warning,) = [fields for kind, fields in reporter.events if kind == "warning"]
    assert warning["tags"] == tags[1:] and "may still be pushed" in warning["message"]


def test_a_removal_that_hangs_is_given_up_after_its_budget() -> None:
    from _scripted_registry import Request, scripted

    release = threading.Event()

    def handler(request: Request) -> tuple[int, bytes | dict[str, Any], dict[str, str]]:
        release.wait(30)  # a registry that does not answer
        return 404, b"", {}

    with scripted(handler) as registry:
        tags = [f"{registry.address}/team/app:rtbuild-b1-linux-amd64"]
        reporter = Recording()
        started = time.monotonic()
        with use_reporter(reporter):
            assert discard_temporary_tags(RegistryOps(), tags, budget_s=1) == tags
        took = time.monotonic() - started
        release.set()
    assert took < 5, took
    (warning,) = [fields for kind, fields in reporter.events if kind == "warning"]
    assert "did not end within 1s" in warning["message"]
