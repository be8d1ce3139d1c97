"""build-many: the file format, its errors, and running many builds (fake builders)."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rtbuild import BuildRequest, Config, ConfigError
from rtbuild._framework.batch import BatchEntry, load_batch_file, parse_batch, requests_from, run_batch
from rtbuild._framework.plugins import RtbuildPluginManager
from rtbuild._framework.progress import Reporter, use_reporter
from rtbuild.errors import BuildFailedError
from rtbuild.testing import FakeBuilder


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with contexts a/ and b/, each holding a Dockerfile."""
    root = tmp_path / "project"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text("FROM scratch\n")
    return root


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# --- parsing ----------------------------------------------------------------------------


def test_toml_file_with_defaults(project: Path) -> None:
    path = write(
        project / "images.toml",
        """
        [defaults]
        platform = "linux/amd64"
        build_args = { BASE = "busybox", N = 1, DEBUG = false }
        labels = { team = "infra", public = true }

        [[build]]
        name = "first"
        path = "a"
        tags = ["app-a:1", "app-a:latest"]
        build_args = { N = 2 }
        target = "runtime"
        no_cache = true
        extra_args = ["--file", "Dockerfile"]

        [[build]]
        path = "b"
        tags = "app-b:1"
        push = true
        builder = "other"
        platform = "linux/arm64"
        """,
    )
    first, second = load_batch_file(path)
    assert first.index == 1 and first.name == "first"
    assert first.request.path == str(project / "a")
    assert first.request.tags == ["app-a:1", "app-a:latest"]
    assert first.request.platform == "linux/amd64"
    # Booleans as TOML writes them, not as Python prints them ("True").
    assert first.request.build_args == {"BASE": "busybox", "N": "2", "DEBUG": "false"}
    assert first.request.labels == {"team": "infra", "public": "true"}
    assert (first.request.target, first.request.no_cache, first.request.data) == ("runtime", True, {})
    assert first.request.extra_build_args == ["--file", "Dockerfile"]
    assert first.request.push is None and first.request.builder is None  # None: from the config
    assert second.name == "app-b:1"
    assert second.request.tags == ["app-b:1"]
    assert second.request.push is True and second.request.builder == "other"
    assert second.request.platform == "linux/arm64"
    assert second.request.build_args == {"BASE": "busybox", "N": "1", "DEBUG": "false"}


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_list_and_mapping_forms(project: Path, suffix: str) -> None:
    as_list = write(
        project / f"list{suffix}",
        """
        - path: a
          tags: [app-a:1]
          build_args: {X: "1", DEBUG: yes}
        - {path: b, tags: [app-b:1], name: bee}
        """,
    )
    # YAML's booleans (PyYAML reads yes/no/true as YAML 1.1 does) as text the way YAML spells them.
    assert load_batch_file(as_list)[0].request.build_args == {"X": "1", "DEBUG": "true"}
    as_mapping = write(
        project / f"map{suffix}",
        """
        defaults:
          build_args: {X: "1"}
        build:
          - path: a
            tags: [app-a:1]
          - {path: b, tags: [app-b:1], name: bee}
        """,
    )
    for path in (as_list, as_mapping):
        entries = load_batch_file(path)
        assert [(e.name, e.request.tags, e.request.path) for e in entries] == [
            ("app-a:1", ["app-a:1"], str(project / "a")),
            ("bee", ["app-b:1"], str(project / "b")),
        ]
        assert entries[0].request.build_args["X"] == "1"


def test_absolute_paths_are_kept(project: Path, tmp_path: Path) -> None:
    entries = parse_batch({"build": [{"path": str(project / "a"), "tags": ["x:1"]}]}, "f.toml", tmp_path)
    assert entries[0].request.path == str(project / "a")


def test_repeated_first_tags_get_numbered_names(project: Path) -> None:
    entries = parse_batch(
        {"build": [{"path": "a", "tags": ["same:1"]}] * 3 + [{"path": "b", "tags": ["x:1"]}]}, "f", project
    )
    assert [e.name for e in entries] == ["same:1#1", "same:1#2", "same:1#3", "x:1"]


def test_a_tag_two_entries_give_to_different_builds_is_refused(project: Path) -> None:
    """Under --jobs the tag would name whichever build finished last, and the other
    entry's result an image the tag no longer names; entries building the same thing
    (the same request, tags apart) may share a tag: the build lock makes that one build."""
    shared = [{"path": "a", "tags": ["app:1", "app:latest"]}, {"path": "a", "tags": ["app:latest"]}]
    assert [e.request.tags for e in parse_batch({"build": shared}, "images.toml", project)] == [
        ["app:1", "app:latest"],
        ["app:latest"],
    ]
    conflicts: list[tuple[dict[str, Any], str]] = [
        ({"path": "b"}, "path"),
        ({"path": "a", "build_args": {"V": "2"}}, "build_args"),
        ({"path": "a", "platform": "linux/arm64", "target": "t"}, "platform, target"),
    ]
    for second, differ in conflicts:
        document = {"build": [{"name": "api", "path": "a", "tags": ["app:1"]}, {**second, "tags": ["x:1", "app:1"]}]}
        with pytest.raises(ConfigError) as info:
            parse_batch(document, "images.toml", project)
        assert str(info.value).startswith(
            f"images.toml: build entry 2 (x:1): tag 'app:1' is also a tag of build entry 1 (api), "
            f"which builds something else (differing in: {differ})"
        )
        assert info.value.step == "read build-many file" and info.value.hint and info.value.exit_code == 2


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"build": [{"path": "a", "tags": ["x:1"], "tagz": ["y"]}]}, "build entry 1 (x:1): unknown key 'tagz'"),
        ({"build": [{"name": "n", "tags": ["x:1"]}]}, "build entry 1 (n): 'path' is required"),
        ({"build": [{"path": "a", "tags": []}]}, "build entry 1: 'tags' must name at least one tag"),
        ({"build": [{"path": "a"}]}, "build entry 1: 'tags' must name at least one tag"),
        ({"build": [{"path": "a", "tags": ["Bad:Tag:x"]}]}, "build entry 1 (Bad:Tag:x): invalid image reference"),
        ({"build": [{"path": "a", "tags": ["x:1"], "push": "yes"}]}, "'push' must be a boolean"),
        ({"build": [{"path": "a", "tags": ["x:1"], "build_args": ["A=1"]}]}, "'build_args' must be a table"),
        ({"build": [{"path": "a", "tags": [1]}]}, "'tags' must be a list of strings"),
        ({"build": [{"path": "missing", "tags": ["x:1"]}]}, "is not a directory"),
        ({"build": [{"path": "a", "tags": ["x:1"]}, "oops"]}, "build entry 2: expected a table"),
        (
            {"build": [{"path": "a", "tags": ["x:1"], "name": "n"}, {"path": "b", "tags": ["y:1"], "name": "n"}]},
            "build entry 2 (n): name 'n' is used by an earlier entry",
        ),
        ({"build": []}, "'build' must be a non-empty list"),
        ({"builds": [{"path": "a", "tags": ["x:1"]}]}, "unknown key 'builds'"),
        ({"defaults": {"name": "x"}, "build": [{"path": "a", "tags": ["x:1"]}]}, "defaults: unknown key 'name'"),
        ("just text", "expected a table with a 'build' list"),
    ],
)
def test_bad_entries_name_file_and_entry(project: Path, document: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_batch(document, "images.toml", project)
    assert str(info.value).startswith("images.toml: ")
    assert expected in str(info.value)
    assert info.value.step == "read build-many file"
    assert info.value.hint
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("build_args", {"API_TOKEN": "SuperSecretValue123", "RETRIES": [3]}, "'RETRIES' holds a list"),
        ("labels", {"token": "SuperSecretValue123", "when": {"a": "b"}}, "'when' holds a table"),
        ("extra_args", ["--build-arg=TOKEN=SuperSecretValue123", 5], "item 2 is an integer"),
        ("extra_args", ["--build-arg=TOKEN=Super\0SecretValue123"], "item 1 holds a NUL character"),
        ("build_args", {"TOKEN": "SuperSecretValue123\0"}, "the value of 'TOKEN' holds a NUL character"),
    ],
)
def test_a_wrong_type_is_named_without_echoing_values(project: Path, field: str, value: Any, named: str) -> None:
    """Build args, labels and extra args may hold secrets: the error names the offending
    key or item and its type, never a value."""
    with pytest.raises(ConfigError) as info:
        parse_batch({"build": [{"path": "a", "tags": ["x:1"], field: value}]}, "images.toml", project)
    assert named in str(info.value)
    assert "SuperSecretValue123" not in info.value.render()


def test_malformed_files(project: Path) -> None:
    bad_toml = write(project / "bad.toml", "[[build]\npath = 'a'\n")
    bad_yaml = write(project / "bad.yaml", "build: [\n")
    for path, kind in ((bad_toml, "TOML"), (bad_yaml, "YAML")):
        with pytest.raises(ConfigError, match=f"{path}: malformed {kind}"):
            load_batch_file(path)
    with pytest.raises(ConfigError, match=r"unknown build-many file type '\.json'"):
        load_batch_file(write(project / "x.json", "{}"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_batch_file(project / "nope.toml")


# --- running ----------------------------------------------------------------------------


class SlowBuilder(FakeBuilder):
    """Fails tags containing "fail", raises a non-rtbuild error for "crash", skips an image
    it already built (like a real backend's no-op skip), and is thread safe."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        super().__init__()
        self.engine_builds: list[str] = []
        self.guard = threading.Lock()
        self.barrier = barrier

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        if self.barrier is not None:
            self.barrier.wait(timeout=30)  # breaks (and fails the build) unless builds overlap
        if "fail" in tags[0]:
            raise BuildFailedError(f"step 2 failed for {tags[0]}", step="RUN false", log_tail=["exit code 1"])
        if "crash" in tags[0]:
            raise ValueError("backend bug")
        if tags[0] in self.images:
            return tags[0]
        time.sleep(0.05)
        with self.guard:
            self.engine_builds.append(tags[0])
            self.images.update(tags)
        return tags[0]


def entries_for(context: Path, tags: list[str]) -> list[BatchEntry]:
    return requests_from([BuildRequest(path=str(context), tags=[tag]) for tag in tags])


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.guard = threading.Lock()

    def event(self, kind: str, **fields: Any) -> None:
        with self.guard:
            self.events.append((kind, fields))


def test_all_builds_succeed_in_file_order(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    builder = SlowBuilder()
    tags = [f"app:{i}" for i in range(8)]
    recorder = Recorder()
    with use_reporter(recorder):
        report = run_batch(entries_for(project / "a", tags), jobs=4, config=Config(), pm=rtbuild_pm, builder=builder)
    assert report.ok
    assert [o.result.image for o in report.outcomes if o.result] == tags
    assert sorted(builder.engine_builds) == tags
    assert report.counts == {"ok": 8, "failed": 0, "skipped": 0, "interrupted": 0, "cached": 0}
    finished = [f for kind, f in recorder.events if kind == "batch_build_finished"]
    assert sorted(f["done"] for f in finished) == list(range(1, 9))
    assert all(f["total"] == 8 for f in finished)
    # Each build's own events carry its name.
    started = [f for kind, f in recorder.events if kind == "build_started"]
    assert sorted(f["build"] for f in started) == tags
    assert all(f["message"].startswith(f"[{f['build']}] ") for f in started)
    assert recorder.events[-1][0] == "batch_finished"


def test_jobs_really_run_concurrently(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    builder = SlowBuilder(barrier=threading.Barrier(4))
    report = run_batch(
        entries_for(project / "a", [f"app:{i}" for i in range(4)]),
        jobs=4,
        config=Config(),
        pm=rtbuild_pm,
        builder=builder,
    )
    assert report.ok, [o.error.message for o in report.outcomes if o.error]


def test_failures_are_all_reported_and_nothing_is_lost(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    tags = ["ok:1", "fail:1", "ok:2", "crash:1", "fail:2", "ok:3"]
    report = run_batch(entries_for(project / "a", tags), jobs=3, config=Config(), pm=rtbuild_pm, builder=SlowBuilder())
    assert not report.ok
    assert [(o.entry.name, o.status) for o in report.outcomes] == [
        ("ok:1", "ok"),
        ("fail:1", "failed"),
        ("ok:2", "ok"),
        ("crash:1", "failed"),
        ("fail:2", "failed"),
        ("ok:3", "ok"),
    ]
    assert report.counts["failed"] == 3
    failed = {o.entry.name: o.error for o in report.outcomes if o.error}
    assert failed["fail:1"] is not None and failed["fail:1"].step == "RUN false"
    assert failed["fail:1"].log_tail == ["exit code 1"]
    assert failed["crash:1"] is not None and "ValueError: backend bug" in failed["crash:1"].message
    as_dict = report.to_dict()
    assert [b["status"] for b in as_dict["builds"]].count("failed") == 3
    assert as_dict["builds"][1]["error"]["step"] == "RUN false"


def test_fail_fast_skips_builds_not_started(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    tags = ["ok:1", "fail:1", "ok:2", "ok:3"]
    report = run_batch(
        entries_for(project / "a", tags), jobs=1, fail_fast=True, config=Config(), pm=rtbuild_pm, builder=SlowBuilder()
    )
    assert [o.status for o in report.outcomes] == ["ok", "failed", "skipped", "skipped"]
    assert report.counts == {"ok": 1, "failed": 1, "skipped": 2, "interrupted": 0, "cached": 0}
    assert not report.ok


def test_same_tag_from_many_entries_builds_once(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    builder = SlowBuilder()
    report = run_batch(
        entries_for(project / "a", ["shared:1"] * 8), jobs=4, config=Config(), pm=rtbuild_pm, builder=builder
    )
    assert report.ok and len(report.outcomes) == 8
    assert builder.engine_builds == ["shared:1"]


def test_jobs_must_be_positive(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        run_batch(entries_for(project / "a", ["x:1"]), jobs=0, config=Config(), pm=rtbuild_pm, builder=SlowBuilder())


# --- the command ------------------------------------------------------------------------

FAILING_SITE_BUILDER = """
from rtbuild import RuntimeBuilder
from rtbuild.errors import BuildFailedError


class SiteBuilder(RuntimeBuilder):
    def build(self, path, tags, platform=None, extra_build_args=None):
        if "fail" in tags[0]:
            raise BuildFailedError(f"cannot build {tags[0]}", step="RUN make", log_tail=["make: *** error 2"])
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        return False
"""


@pytest.fixture
def site_file(rtbuild_site: Any, project: Path) -> Path:
    rtbuild_site.add_builder("rtbuild-fake", "fake", source=FAILING_SITE_BUILDER)
    return write(
        project / "images.toml",
        """
        [defaults]
        builder = "fake"

        [[build]]
        path = "a"
        tags = ["app-a:1"]

        [[build]]
        path = "b"
        tags = ["fail-b:1"]

        [[build]]
        path = "b"
        tags = ["app-b:1"]

        [[build]]
        path = "a"
        tags = ["fail-a:1"]
        """,
    )


def test_cli_reports_every_failure_and_exits_1(site_file: Path) -> None:
    from rtbuild.testing import run_cli

    result = run_cli(["build-many", str(site_file), "--jobs", "2"])
    assert result.exit_code == 1, result.stderr
    assert result.stdout.split() == ["app-a:1", "app-b:1"]
    assert "build 2 (fail-b:1) failed:" in result.stderr
    assert "build 4 (fail-a:1) failed:" in result.stderr
    assert "make: *** error 2" in result.stderr
    assert "4 builds in" in result.stderr and "2 built, 0 reused, 2 failed, 0 skipped" in result.stderr


def test_cli_json_report(site_file: Path) -> None:
    from rtbuild.testing import run_cli

    result = run_cli(["build-many", str(site_file), "--json", "-j", "3"])
    assert result.exit_code == 1
    report = result.json()
    assert report["jobs"] == 3 and report["ok"] is False
    assert report["counts"]["failed"] == 2
    assert [b["status"] for b in report["builds"]] == ["ok", "failed", "ok", "failed"]
    assert report["builds"][1]["error"]["message"] == "cannot build fail-b:1"


def test_cli_all_ok_exits_0(rtbuild_site: Any, project: Path) -> None:
    from rtbuild.testing import run_cli

    rtbuild_site.add_builder("rtbuild-fake", "fake", source=FAILING_SITE_BUILDER)
    path = write(
        project / "ok.yaml", "- {path: a, tags: [x:1], builder: fake}\n- {path: b, tags: [y:1], builder: fake}\n"
    )
    result = run_cli(["build-many", str(path), "-q"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["x:1", "y:1"]


def test_cli_bad_file_is_a_usage_error(rtbuild_site: Any, project: Path) -> None:
    from rtbuild.testing import run_cli

    path = write(project / "bad.toml", "[[build]]\npath = 'a'\ntags = ['x:1']\nplatfrom = 'linux/amd64'\n")
    result = run_cli(["build-many", str(path)])
    assert result.exit_code == 2
    assert f"{path}: build entry 1 (x:1): unknown key 'platfrom'" in result.stderr
    assert run_cli(["build-many", str(path), "--jobs", "0"]).exit_code == 2


class InterruptedBuilder(SlowBuilder):
    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        with self.guard:
            self.calls.append({"method": "build", "tags": list(tags)})
        if "interrupt" in tags[0]:
            raise KeyboardInterrupt
        return super().build(path, tags, platform, extra_build_args)


def test_interrupt_starts_no_further_build(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    builder = InterruptedBuilder()
    entries = entries_for(project / "a", ["ok:1", "interrupt:1", "ok:2", "ok:3"])
    with pytest.raises(KeyboardInterrupt):
        run_batch(entries, jobs=1, config=Config(), pm=rtbuild_pm, builder=builder)
    assert [c["tags"][0] for c in builder.calls if c["method"] == "build"] == ["ok:1", "interrupt:1"]


class HoldingBuilder(InterruptedBuilder):
    """ "hold" builds return only once the run is being cancelled, as a real build returns
    when the cancel stops its engine process: its worker then takes the next entry."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelling = threading.Event()

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        if "hold" in tags[0]:
            assert self.cancelling.wait(30)
        return super().build(path, tags, platform, extra_build_args)


def test_entries_skipped_after_an_interrupt_say_so(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    """They said 'skipped (--fail-fast)' without --fail-fast."""
    from rtbuild._framework.interrupts import on_cancel

    builder = HoldingBuilder()

    def cancelling() -> None:  # what stopping the engine builds takes, in which workers go on
        builder.cancelling.set()
        time.sleep(0.5)

    unregister = on_cancel(cancelling)
    recorder = Recorder()
    entries = entries_for(project / "a", ["interrupt:1", "hold:1", "ok:2", "ok:3"])
    try:
        with use_reporter(recorder), pytest.raises(KeyboardInterrupt):
            run_batch(entries, jobs=2, config=Config(), pm=rtbuild_pm, builder=builder)
    finally:
        unregister()
    skipped = [
        f["message"] for kind, f in recorder.events if kind == "batch_build_finished" and f["status"] == "skipped"
    ]
    assert skipped and all(message.endswith(": skipped (interrupted)") for message in skipped), skipped


def test_yaml_without_pyyaml_says_what_to_install(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml -> ImportError
    path = write(project / "images.yaml", "- {path: a, tags: [x:1]}\n")
    with pytest.raises(ConfigError, match="reading YAML needs PyYAML") as info:
        load_batch_file(path)
    assert info.value.hint is not None and "rtbuild[yaml]" in info.value.hint


class PushHoldingBuilder(HoldingBuilder):
    """The "interrupt" build raises Ctrl-C only once the "hold" build runs."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()

    def build(
        self, path: str, tags: list[str], platform: str | None = None, extra_build_args: list[str] | None = None
    ) -> str:
        if "hold" in tags[0]:
            self.holding.set()
        elif "interrupt" in tags[0]:
            assert self.holding.wait(30)
        return super().build(path, tags, platform, extra_build_args)


def test_a_build_finishing_after_an_interrupt_is_not_pushed(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    """A build that returned once Ctrl-C/SIGTERM had stopped the batch went on to push its
    tags (on a stalled registry the batch then waited for that push, two minutes by default,
    before rtbuild could exit); its outcome is 'interrupted', saying the push was not made."""
    from rtbuild._framework.interrupts import on_cancel

    builder = PushHoldingBuilder()
    unregister = on_cancel(builder.cancelling.set)
    entries = requests_from(
        [
            BuildRequest(path=str(project / "a"), tags=["interrupt:1"]),
            BuildRequest(path=str(project / "b"), tags=["hold:1"], push=True),
        ]
    )
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            run_batch(entries, jobs=2, config=Config(), pm=rtbuild_pm, builder=builder)
    finally:
        unregister()
    assert sorted(c["tags"][0] for c in builder.calls if c["method"] == "build") == ["hold:1", "interrupt:1"]
    assert builder.pushed == []
    held = info.value.rtbuild_batch_report.outcomes[1]  # type: ignore[attr-defined]
    assert held.status == "interrupted"
    expected = "stopped by the interrupt (Ctrl-C or SIGTERM) before hold:1 was pushed (its build had finished)"
    assert held.error.message == expected
    assert "hold:1 was built, and not pushed" in str(held.error.__cause__)


def test_one_tag_in_another_spelling_is_the_same_tag(project: Path, rtbuild_pm: RtbuildPluginManager) -> None:
    """app, app:latest and docker.io/library/app:latest name one image: two entries giving
    them to different builds raced for it unseen (the check compared spellings), and one
    entry naming a tag twice had it tagged and pushed twice."""
    for first, second in [
        ("app", "app:latest"),
        ("app:1", "docker.io/library/app:1"),
        ("t/a:1", "index.docker.io/t/a:1"),
    ]:
        document = {"build": [{"path": "a", "tags": [first]}, {"path": "b", "tags": [second]}]}
        with pytest.raises(ConfigError, match=f"tag '{second}' is also a tag of build entry 1"):
            parse_batch(document, "images.toml", project)
    builder = SlowBuilder()
    request = BuildRequest(
        path=str(project / "a"), tags=["app:1", "x:1", "app:1", "docker.io/library/app:1"], push=True
    )
    report = run_batch(requests_from([request]), config=Config(), pm=rtbuild_pm, builder=builder)
    assert report.ok and report.outcomes[0].result is not None
    assert builder.pushed == ["app:1", "x:1"]
    assert report.outcomes[0].result.tags == ["app:1", "x:1"]
