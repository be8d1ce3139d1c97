"""The cached entry-point scan: same answer as importlib.metadata, invalidated by installs."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rtbuild._framework import entrypoints
from rtbuild.testing import FakeSite


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    """A fake site that is the whole of sys.path, with a private cache directory."""
    fake = FakeSite(tmp_path / "site")
    monkeypatch.setattr(sys, "path", [str(fake.root)])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RTBUILD_NO_ENTRY_POINT_CACHE", raising=False)
    return fake


def _names(scanned: dict[str, list[entrypoints.EntryPointInfo]]) -> dict[str, list[tuple[str, str | None, str | None]]]:
    return {g: sorted((i.name, i.distribution, i.version) for i in items) for g, items in scanned.items()}


def _forbid_rescan(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: Any) -> Any:
        raise AssertionError("rescanned although nothing changed")

    monkeypatch.setattr(entrypoints, "_scan_metadata", boom)


def test_second_scan_is_served_from_the_cache(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    site.add("rt-b", version="2.1", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    first = entrypoints.scan()
    assert _names(first) == {"rtbuild.builders": [("bee", "rt-b", "2.1")], "rtbuild.plugins": [], "rtbuild?": []}
    assert os.path.isfile(entrypoints.cache_path())
    _forbid_rescan(monkeypatch)
    assert entrypoints.scan() == first


def test_installing_a_distribution_invalidates_the_cache(site: FakeSite) -> None:
    site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    entrypoints.scan()
    site.add("rt-p", entry_points={"rtbuild.plugins": {"pea": "pea_mod"}})
    assert _names(entrypoints.scan())["rtbuild.plugins"] == [("pea", "rt-p", "1.0")]


def test_editing_entry_points_in_place_invalidates_the_cache(site: FakeSite) -> None:
    dist = site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    entrypoints.scan()
    eps_file = next(dist.site.glob("rt_b-*.dist-info")) / "entry_points.txt"
    eps_file.write_text("[rtbuild.builders]\nwasp = wasp_mod:Wasp\n")
    later = time.time_ns() + 5_000_000_000  # a clearly different mtime, whatever the clock granularity
    os.utime(eps_file, ns=(later, later))
    assert _names(entrypoints.scan())["rtbuild.builders"] == [("wasp", "rt-b", "1.0")]


def test_a_corrupt_cache_is_rescanned(site: FakeSite) -> None:
    site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    first = entrypoints.scan()
    Path(entrypoints.cache_path()).write_text("{not json")
    assert entrypoints.scan() == first


def test_cache_can_be_turned_off(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    monkeypatch.setenv("RTBUILD_NO_ENTRY_POINT_CACHE", "1")
    entrypoints.scan()
    assert not os.path.exists(entrypoints.cache_path())


def test_load_resolves_module_and_attribute_paths(site: FakeSite) -> None:
    site.add(
        "rt-x",
        entry_points={"rtbuild.plugins": {"x": "x_mod:Outer.inner"}},
        modules={"x_mod.py": "class Outer:\n    inner = 42\n"},
    )
    (info,) = entrypoints.scan()["rtbuild.plugins"]
    assert info.load() == 42
    assert entrypoints.EntryPointInfo("m", "x_mod", "g", None, None).load() is sys.modules["x_mod"]
    with pytest.raises(ValueError, match="malformed"):
        entrypoints.EntryPointInfo("m", "not a value!", "g", None, None).load()


def test_a_settled_directory_is_not_listed_again_until_it_changes(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    monkeypatch.setattr(entrypoints, "_RACY_NS", 0)  # count the just-written site as settled
    first = entrypoints.scan()
    listed: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path: Any) -> Any:
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    with monkeypatch.context() as patched:
        _forbid_rescan(patched)
        assert entrypoints.scan() == first
    assert listed == []  # served from the recorded listing
    site.add("rt-p", entry_points={"rtbuild.plugins": {"pea": "pea_mod"}})
    later = time.time_ns() + 5_000_000_000  # the listing moved, whatever the clock granularity
    os.utime(site.root, ns=(later, later))
    assert _names(entrypoints.scan())["rtbuild.plugins"] == [("pea", "rt-p", "1.0")]
    assert str(site.root) in listed


def test_a_directory_changed_just_now_is_listed_every_time(site: FakeSite) -> None:
    # A change in the same clock tick as the scan might not move the directory's times.
    site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    entrypoints.scan()
    recorded = json.loads(Path(entrypoints.cache_path()).read_text())["listings"]
    assert str(site.root) not in recorded


def test_the_working_directory_is_recorded_by_its_absolute_path(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "" on sys.path is whatever directory the next run starts in: never reuse its listing by name.
    site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    monkeypatch.setattr(sys, "path", [""])
    monkeypatch.chdir(site.root)
    monkeypatch.setattr(entrypoints, "_RACY_NS", 0)
    assert _names(entrypoints.scan())["rtbuild.builders"] == [("bee", "rt-b", "1.0")]
    recorded = json.loads(Path(entrypoints.cache_path()).read_text())["listings"]
    assert list(recorded) == [str(site.root)]


def test_each_sys_path_keeps_its_own_cache(site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The rtbuild script, `python -m rtbuild` and a service using the API see different
    # sys.path[0]: alternating between them must not rescan every time.
    site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    script_dir, other_dir = tmp_path / "bin", tmp_path / "service"
    script_dir.mkdir()
    other_dir.mkdir()
    as_script, as_service = [str(script_dir), str(site.root)], [str(other_dir), str(site.root)]
    monkeypatch.setattr(sys, "path", as_script)
    first = entrypoints.scan()
    monkeypatch.setattr(sys, "path", as_service)
    assert entrypoints.scan() == first
    assert entrypoints.cache_path(as_script) != entrypoints.cache_path(as_service)
    with monkeypatch.context() as patched:
        _forbid_rescan(patched)
        for path in (as_script, as_service, as_script):
            patched.setattr(sys, "path", path)
            assert entrypoints.scan() == first


def test_a_rescan_keeps_only_the_newest_cache_files(
    site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add("rt-b", entry_points={"rtbuild.builders": {"bee": "bee_mod:Bee"}})
    folder = Path(entrypoints.cache_path()).parent
    folder.mkdir(parents=True)
    legacy = folder / "entry-points.json"  # the single file of earlier versions
    legacy.write_text("{}")
    old = []
    for index in range(entrypoints.MAX_FILES + 3):
        stale = folder / f"entry-points-{index:016x}.json"
        stale.write_text("{}")
        os.utime(stale, ns=(index * 1_000_000_000, index * 1_000_000_000))
        old.append(stale)
    entrypoints.scan()  # a miss: rescans, writes its file, trims the rest
    kept = sorted(folder.glob("entry-points-*.json"))
    assert len(kept) == entrypoints.MAX_FILES
    assert Path(entrypoints.cache_path()) in kept
    assert not legacy.exists()
    assert [p for p in old if p.exists()] == old[-(entrypoints.MAX_FILES - 1) :]  # the newest others stay
    extra = folder / "entry-points-ffffffffffffffff.json"
    extra.write_text("{}")
    entrypoints.scan()  # a hit removes nothing
    assert extra.exists()


def test_a_misspelt_rtbuild_group_is_kept_apart_and_cached(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    # Kept so the typo can be warned about (never loaded); other projects' groups are not kept.
    site.add("rt-s", entry_points={"rtbuild.plugin": {"stamp": "stamp_mod"}, "pytest11": {"x": "x_mod"}})
    first = entrypoints.scan()
    assert _names(first) == {"rtbuild.builders": [], "rtbuild.plugins": [], "rtbuild?": [("stamp", "rt-s", "1.0")]}
    assert first["rtbuild?"][0].group == "rtbuild.plugin"
    _forbid_rescan(monkeypatch)
    assert entrypoints.scan() == first
