"""build-many, multi-platform entries sharing a tag push it once.

A multi-platform request pushes inside its builder (each ``TAG-os-arch`` image, then one
index per tag, through :mod:`rtbuild.enginekit`), so the core's push-once rule (149b6dd)
never applied: entries giving ``app:1`` with ``--platform a,b`` pushed its platform images
and PUT its index once each (an entry ``[app:1, app:2]`` after one ``[app:1]`` pushed both
tags' images and indexes again). Fakes at the registry boundary: the enginekit calls
Docker's and Podman's builders make, in the batch's push-once context.
"""

from __future__ import annotations

from typing import Any

import pytest
import rtbuild.oci
from rtbuild._framework.progress import Reporter, use_reporter
from rtbuild._framework.pushonce import push_ledger
from rtbuild.enginekit import assemble_indexes, build_each_platform, indexes_current, plan_platforms

PLATFORMS = ["linux/amd64", "linux/arm64"]
IDS = {"linux/amd64": "sha256:" + "a" * 64, "linux/arm64": "sha256:" + "b" * 64}


class Registry:
    """What reached the registry: the platform pushes, the index PUTs, any client made."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pushed: list[str] = []
        self.indexes: list[str] = []
        self.clients = 0
        self.reads: list[str] = []
        registry = self

        class Client:
            def __init__(self, **_: Any) -> None:
                registry.clients += 1

        def get_manifest(client: Any, ref: Any) -> None:
            registry.reads.append(str(ref))
            return None  # the registry has no such tag yet: push

        def describe(client: Any, ref: Any, platform: str) -> str:
            return f"{ref}@{platform}"

        def push_index(client: Any, repo: Any, tag: str, manifests: Any) -> str:
            registry.indexes.append(f"{repo.repository}:{tag}")
            return "sha256:" + str(len(registry.indexes)) * 64

        monkeypatch.setattr(rtbuild.oci, "RegistryClient", Client)
        monkeypatch.setattr(rtbuild.oci, "get_manifest", get_manifest)
        monkeypatch.setattr(rtbuild.oci, "describe", describe)
        monkeypatch.setattr(rtbuild.oci, "push_index", push_index)

    def entry(self, tags: list[str], ids: dict[str, str] = IDS) -> dict[str, str]:
        """One multi-platform entry with push, as the Docker builder runs it; its index digests."""

        def build(plan: Any) -> dict[str, Any]:
            return {"cached": False, "image_id": ids[plan.platform]}

        def push(tag: str) -> str:
            self.pushed.append(tag)
            return "sha256:" + "d" * 64

        current: dict[str, str] = {}

        def unchanged(done: dict[str, dict[str, Any]]) -> bool:
            current.update(indexes_current(tags, done) or {})
            return bool(current)

        per_platform = build_each_platform(plan_platforms(tags, PLATFORMS, push=True), build, push, unchanged)
        return current or assemble_indexes(tags, PLATFORMS, per_platform=per_platform)


class Events(Reporter):
    def __init__(self) -> None:
        self.skipped: list[str] = []

    def event(self, kind: str, **fields: Any) -> None:
        if kind == "push_skipped":
            self.skipped.append(str(fields["image"]))


def test_entries_sharing_a_multi_platform_tag_push_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(monkeypatch)
    entries = [["reg.test/app:1"], ["reg.test/app:1", "reg.test/app:2"], ["reg.test/app:1"]]
    events = Events()
    with use_reporter(events), push_ledger(entries):
        first = registry.entry(entries[0])
        second = registry.entry(entries[1])
        assert registry.reads == ["reg.test/app:1", "reg.test/app:2"]  # app:1 once: the second skips it
        clients = registry.clients
        third = registry.entry(entries[2])
    assert registry.pushed == [
        "reg.test/app:1-linux-amd64",
        "reg.test/app:1-linux-arm64",
        "reg.test/app:2-linux-amd64",
        "reg.test/app:2-linux-arm64",
    ]
    assert registry.indexes == ["app:1", "app:2"]
    assert second["reg.test/app:1"] == third["reg.test/app:1"] == first["reg.test/app:1"]
    assert registry.clients == clients and len(registry.reads) == 2  # the third entry asked no registry
    assert events.skipped == ["reg.test/app:1", "reg.test/app:1"]


def test_another_image_for_one_platform_is_pushed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never stale: the context edited during the batch gives another arm64 image."""
    registry = Registry(monkeypatch)
    tags = ["reg.test/app:1"]
    with push_ledger([tags, tags]):
        registry.entry(tags)
        registry.entry(tags, {**IDS, "linux/arm64": "sha256:" + "e" * 64})
    assert registry.pushed == ["reg.test/app:1-linux-amd64", "reg.test/app:1-linux-arm64"] * 2
    assert registry.indexes == ["app:1", "app:1"]


def test_outside_a_batch_each_request_pushes(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(monkeypatch)
    for _ in range(2):
        registry.entry(["reg.test/app:1"])
    assert registry.indexes == ["app:1", "app:1"]
