"""build-many: entries that share a tag (they build the same thing) push it once.

Each entry pushed every tag it has: four entries sharing app:1 with push = true pushed the
same image four times. A later entry skips the push of a tag this batch already pushed the
same image to (its builder's image ID), and its result still says pushed; never stale: an
image that changed in between (the context was edited during the batch) is pushed again.
"""

from __future__ import annotations

from pathlib import Path

from rtbuild import BuildRequest, Config
from rtbuild._framework.batch import requests_from, run_batch
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild._framework.progress import Reporter, use_reporter
from rtbuild.testing import FakeBuilder


class Events(Reporter):
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def event(self, kind: str, **fields: object) -> None:
        self.kinds.append(kind)


def _context(tmp_path: Path, text: str = "FROM scratch\n") -> Path:
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(text)
    return context


def test_a_shared_tag_is_pushed_once(tmp_path: Path, rtbuild_pm: RtbuildPluginManager, isolated_cache: Path) -> None:
    context = _context(tmp_path)
    builder = FakeBuilder()
    requests = [BuildRequest(path=str(context), tags=["reg.test/app:1", "reg.test/app:latest"], push=True)]
    requests += [BuildRequest(path=str(context), tags=["reg.test/app:1"], push=True) for _ in range(3)]
    events = Events()
    with use_reporter(events):
        report = run_batch(requests_from(requests), jobs=4, config=Config(), pm=rtbuild_pm, builder=builder)
    assert report.ok, report.to_dict()
    assert sorted(builder.pushed) == ["reg.test/app:1", "reg.test/app:latest"]
    for outcome in report.outcomes:  # each entry's image is in the registry: each says pushed
        assert outcome.result is not None and outcome.result.details.get("pushed") is True
    assert events.kinds.count("push_skipped") == 3


class EditingBuilder(FakeBuilder):
    """Edits the context's Dockerfile after its first build, as a user (or a generator) may
    while a batch runs: the next entry's build makes another image under the same tag."""

    def __init__(self, dockerfile: Path) -> None:
        super().__init__()
        self.dockerfile = dockerfile

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        image = super().build(path, tags, platform, extra_build_args)
        self.dockerfile.write_text(self.dockerfile.read_text() + "LABEL edit=1\n")
        return image


def test_a_shared_tag_whose_image_changed_is_pushed_again(
    tmp_path: Path, rtbuild_pm: RtbuildPluginManager, isolated_cache: Path
) -> None:
    context = _context(tmp_path)
    builder = EditingBuilder(context / "Dockerfile")
    requests = [BuildRequest(path=str(context), tags=["reg.test/app:1"], push=True) for _ in range(2)]
    report = run_batch(requests_from(requests), jobs=1, config=Config(), pm=rtbuild_pm, builder=builder)
    assert report.ok, report.to_dict()
    assert builder.pushed == ["reg.test/app:1", "reg.test/app:1"]  # the second image is not the first


def test_separate_batches_push_again(tmp_path: Path, rtbuild_pm: RtbuildPluginManager, isolated_cache: Path) -> None:
    """What a batch pushed is its own record: the next run (the registry may have lost it) pushes."""
    context = _context(tmp_path)
    builder = FakeBuilder()
    for _ in range(2):
        request = BuildRequest(path=str(context), tags=["reg.test/app:1"], push=True)
        assert run_batch(requests_from([request]), config=Config(), pm=rtbuild_pm, builder=builder).ok
    assert builder.pushed == ["reg.test/app:1", "reg.test/app:1"]


class CountingBuilder(FakeBuilder):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def image_id(self, name: str) -> str | None:
        self.asked.append(name)
        return super().image_id(name)


def test_a_tag_no_other_entry_gives_is_not_looked_up(
    tmp_path: Path, rtbuild_pm: RtbuildPluginManager, isolated_cache: Path
) -> None:
    """A builder's image_id may ask a registry (Kubernetes): only shared tags need it."""
    context = _context(tmp_path)
    builder = CountingBuilder()
    requests = [BuildRequest(path=str(context), tags=[f"reg.test/app-{i}:1"], push=True) for i in range(3)]
    requests.append(BuildRequest(path=str(context), tags=["reg.test/app-0:1", "reg.test/extra:1"], push=True))
    report = run_batch(requests_from(requests), jobs=1, config=Config(), pm=rtbuild_pm, builder=builder)
    assert report.ok, report.to_dict()
    assert sorted(set(builder.asked)) == ["reg.test/app-0:1"]
    assert sorted(builder.pushed) == ["reg.test/app-0:1", "reg.test/app-1:1", "reg.test/app-2:1", "reg.test/extra:1"]
