"""rtbuild-metrics with the fake builder: lines written through run_build, cache hits,
concurrent appends, configuration precedence, and failures that must not fail a build."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import rtbuild
import rtbuild_metrics.plugin as metrics_plugin
from rtbuild import BuildRequest, BuildResult, Config, ImageInfo, RuntimeBuilder
from rtbuild.testing import FakeBuilder
from rtbuild_metrics.record import append_line, rotated


class SizedBuilder(FakeBuilder):
    """A fake builder whose ``inspect_image`` reports a size (as the Docker builder does)."""

    def inspect_image(self, name: str) -> ImageInfo | None:
        return ImageInfo(id="sha256:1", size=123_456) if name in self.images else None


class ReuseExisting:
    """Stands in for the runtime cache tier: an existing tag is reused, not built."""

    @rtbuild.hookimpl(tryfirst=True)
    def build(self, request: BuildRequest, builder: RuntimeBuilder) -> BuildResult | None:
        if builder.image_exists(request.tags[0], pull_from_repo=False):
            return BuildResult(request.tags[0], list(request.tags), "fake", 0.0, cached=True)
        return None


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\n")
    return ctx


@pytest.fixture
def metrics_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "metrics.jsonl"
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(path))
    return path


def _build(
    context: Path, builder: RuntimeBuilder, tag: str = "demo/app:1", config: Config | None = None
) -> BuildResult:
    config = config or Config()
    pm = rtbuild.get_plugin_manager(config, load_entrypoints=False, extra_plugins=[metrics_plugin, ReuseExisting()])
    return rtbuild.run_build(
        BuildRequest(str(context), tags=[tag, "demo/app:latest"]), config=config, pm=pm, builder=builder
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_build_then_cached_build_write_one_line_each(context: Path, metrics_file: Path) -> None:
    builder = SizedBuilder()
    first = _build(context, builder)
    second = _build(context, builder)
    assert (first.cached, second.cached) == (False, True)
    lines = _lines(metrics_file)
    assert len(lines) == 2
    built, reused = lines
    assert set(built) == {
        "timestamp",
        "image",
        "builder",
        "duration_s",
        "cached",
        "size_bytes",
        "tags",
        "rtbuild_version",
        "stage",
        "repository",
        "success",
    }
    assert built["repository"] == "demo/app" and built["success"] is True
    assert built["image"] == "demo/app:1"
    assert built["tags"] == ["demo/app:1", "demo/app:latest"]
    assert built["builder"] == "SizedBuilder"
    assert built["cached"] is False and reused["cached"] is True
    assert reused["builder"] == "fake"
    assert built["size_bytes"] == reused["size_bytes"] == 123_456
    assert isinstance(built["duration_s"], float) and built["duration_s"] >= 0
    assert built["rtbuild_version"] == rtbuild.__version__
    assert built["timestamp"].endswith("Z") and built["timestamp"] <= reused["timestamp"]
    # The fake engine really was asked once: the second build was a reuse.
    assert [c["method"] for c in builder.calls].count("build") == 1


def test_builder_without_image_size_records_null(context: Path, metrics_file: Path) -> None:
    class Unsized(FakeBuilder):
        def inspect_image(self, name: str) -> ImageInfo | None:
            return None  # the base class's default: the backend cannot tell

    _build(context, Unsized())
    assert _lines(metrics_file)[0]["size_bytes"] is None


def test_image_size_failure_records_null(context: Path, metrics_file: Path) -> None:
    class Broken(FakeBuilder):
        def inspect_image(self, name: str) -> ImageInfo | None:
            raise RuntimeError("engine went away")

    _build(context, Broken())
    assert _lines(metrics_file)[0]["size_bytes"] is None


def test_concurrent_builds_never_interleave(context: Path, metrics_file: Path) -> None:
    builder = SizedBuilder()
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for round_ in range(10):
                _build(context, builder, tag=f"demo/app:t{index}-{round_}")
        except BaseException as exc:  # surface thread failures in the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    lines = _lines(metrics_file)
    assert len(lines) == 80
    assert {line["image"] for line in lines} == {f"demo/app:t{i}-{r}" for i in range(8) for r in range(10)}


def test_concurrent_large_appends_stay_whole_lines(tmp_path: Path) -> None:
    # Big records (64 KiB) make torn or interleaved writes visible if appends were not atomic.
    path = tmp_path / "big.jsonl"
    payload = "x" * 65_536

    def worker(index: int) -> None:
        for round_ in range(25):
            append_line(path, {"worker": index, "round": round_, "pad": payload})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = _lines(path)
    assert len(lines) == 200
    assert all(line["pad"] == payload for line in lines)
    assert {(line["worker"], line["round"]) for line in lines} == {(w, r) for w in range(8) for r in range(25)}


def test_a_full_file_is_rotated_once_and_no_line_is_lost(tmp_path: Path) -> None:
    """Eight writers cross the bound together: one of them moves the file to FILE.1, the
    others must not move the new file over it (every line survives, in one generation)."""
    payload = "x" * 200
    for attempt in range(5):  # the writers race at the bound: give a wrong rotation chances to show
        path = tmp_path / f"metrics-{attempt}.jsonl"

        def worker(index: int, path: Path = path) -> None:
            for round_ in range(100):
                append_line(path, {"worker": index, "round": round_, "pad": payload}, max_bytes=120_000)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        old, new = _lines(rotated(path)), _lines(path)
        # About 200 KB in all: rotated once, not before the bound, and the rest stays under it.
        # How far past the bound FILE.1 goes is not bounded here: lines other writers append
        # while the rotating one renames land in FILE.1 too, as many as the scheduler lets
        # them write (up to 23 KB on 2 loaded cores); the next test pins where they go.
        assert rotated(path).stat().st_size >= 120_000 and path.stat().st_size < 120_000
        everything = {(w, r) for w in range(8) for r in range(100)}
        assert {(line["worker"], line["round"]) for line in old + new} == everything
        assert len(old) + len(new) == 800 and all(line["pad"] == payload for line in old + new)
        # One generation boundary: each writer's lines up to the rename are in FILE.1, and
        # every later one is in FILE (nothing was moved back over the old generation).
        for w in range(8):
            before = sorted(line["round"] for line in old if line["worker"] == w)
            after = sorted(line["round"] for line in new if line["worker"] == w)
            assert before + after == list(range(100)), (w, before, after)


def test_lines_appended_while_the_full_file_is_renamed_go_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer that crossed the bound holds the file's lock while it renames it; writers
    that append meanwhile (their descriptor leads to the full file) do not wait for it or
    rename anything, and their lines end up in FILE.1; the first line after the rename
    starts FILE. The rename is held open with an event, not a sleep."""
    import rtbuild_metrics.record as record_module

    path = tmp_path / "metrics.jsonl"
    for n in range(4):
        append_line(path, {"n": n, "pad": "y" * 100})
    bound = path.stat().st_size + 1  # the next line crosses it
    renaming, go = threading.Event(), threading.Event()
    real_rotated = record_module.rotated

    def held_rotated(target: Path) -> Path:  # called under the lock, just before os.replace
        renaming.set()
        assert go.wait(30), "the test never let the rename go on"
        return real_rotated(target)

    monkeypatch.setattr(record_module, "rotated", held_rotated)
    crossing = threading.Thread(
        target=append_line, args=(path, {"n": 4, "pad": "y" * 100}), kwargs={"max_bytes": bound}
    )
    crossing.start()
    try:
        assert renaming.wait(30), "the line that crossed the bound did not rotate the file"
        for n in range(5, 25):  # each sees the full file, finds its lock taken, and returns
            append_line(path, {"n": n, "pad": "y" * 100}, max_bytes=bound)
    finally:
        go.set()
        crossing.join()
    monkeypatch.setattr(record_module, "rotated", real_rotated)
    append_line(path, {"n": 25, "pad": "y" * 100}, max_bytes=bound)
    assert [line["n"] for line in _lines(rotated(path))] == list(range(25))
    assert [line["n"] for line in _lines(path)] == [25]


def test_rotation_keeps_one_generation_and_the_report_reads_both(tmp_path: Path) -> None:
    from rtbuild._observe.report import load_records

    path = tmp_path / "metrics.jsonl"
    for n in range(30):
        record = {"timestamp": f"2026-12-01T00:00:{n:02d}Z", "image": "a/b:1", "n": n, "pad": "y" * 100}
        append_line(path, record, max_bytes=1_000)
    # Each rotation replaced the generation before: what is left is the newest lines, in order.
    kept = [record["n"] for record in load_records(path).records]
    assert kept == list(range(30 - len(kept), 30)) and 5 <= len(kept) < 30
    assert rotated(path).stat().st_size >= 1_000 and (not path.exists() or path.stat().st_size < 1_000)
    # 0 means no bound.
    unbounded = tmp_path / "unbounded.jsonl"
    for n in range(30):
        append_line(unbounded, {"n": n, "pad": "y" * 100}, max_bytes=0)
    assert len(_lines(unbounded)) == 30 and not rotated(unbounded).exists()


def test_max_bytes_comes_from_the_table_or_the_environment(
    context: Path, metrics_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert metrics_plugin._table(Config(), {}).max_bytes == metrics_plugin.DEFAULT_MAX_BYTES == 64 * 1024 * 1024
    monkeypatch.setenv("RTBUILD_METRICS_MAX_BYTES", "1")
    _build(context, SizedBuilder())
    assert not metrics_file.exists() and len(_lines(rotated(metrics_file))) == 1
    monkeypatch.setenv("RTBUILD_METRICS_MAX_BYTES", "-5")
    with pytest.warns(metrics_plugin.MetricsWarning, match="must be 0"):
        assert _build(context, SizedBuilder()).image == "demo/app:1"


def test_unwritable_path_warns_and_keeps_the_build(
    context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be\n")
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(blocker / "metrics.jsonl"))
    builder = SizedBuilder()
    with pytest.warns(metrics_plugin.MetricsWarning, match="not-a-dir"):
        result = _build(context, builder)
    assert result.image == "demo/app:1"
    assert "demo/app:1" in builder.images


@pytest.mark.parametrize(("table", "words"), [({"path": ["a"]}, "expected a string"), ({"pth": "x"}, "unknown key")])
def test_a_bad_metrics_table_warns_and_keeps_the_build(
    context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: dict[str, Any], words: str
) -> None:
    """Checked like every plugin's table, but said as a warning: raising after the build
    would fail a build that succeeded. Nothing is written where a list's repr names a file."""
    monkeypatch.delenv("RTBUILD_METRICS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    builder = SizedBuilder()
    with pytest.warns(metrics_plugin.MetricsWarning, match=words):
        result = _build(context, builder, config=Config(plugins={"metrics": table}))
    assert result.image == "demo/app:1" and not (tmp_path / "['a']").exists()


def test_path_precedence(tmp_path: Path) -> None:
    config = Config(plugins={"metrics": {"path": str(tmp_path / "from-config.jsonl")}})
    env = {"RTBUILD_METRICS_FILE": str(tmp_path / "from-env.jsonl")}
    assert metrics_plugin.metrics_path(config, env) == tmp_path / "from-env.jsonl"
    assert metrics_plugin.metrics_path(config, {}) == tmp_path / "from-config.jsonl"
    assert metrics_plugin.metrics_path(Config(), {"XDG_STATE_HOME": str(tmp_path)}) == (
        tmp_path / "rtbuild" / "metrics.jsonl"
    )
    assert metrics_plugin.metrics_path(Config(), {}) == Path.home() / ".local/state/rtbuild/metrics.jsonl"


def test_config_file_path_is_used(context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTBUILD_METRICS_FILE", raising=False)
    target = tmp_path / "configured.jsonl"
    toml = tmp_path / "rtbuild.toml"
    toml.write_text(f'[plugins.metrics]\npath = "{target}"\n')
    config = rtbuild.load_config(toml, env={})
    _build(context, SizedBuilder(), config=config)
    assert _lines(target)[0]["image"] == "demo/app:1"


def test_registered_as_entry_point() -> None:
    from importlib import metadata

    eps = {ep.name: ep.value for ep in metadata.entry_points(group="rtbuild.plugins")}
    assert eps.get("metrics") == "rtbuild_metrics.plugin"


def test_failed_build_writes_a_failure_line_with_class_and_step(context: Path, metrics_file: Path) -> None:
    with pytest.raises(rtbuild.BuildFailedError):
        _build(context, FakeBuilder(fail_with="secret-ish message"))
    (line,) = _lines(metrics_file)
    assert line["success"] is False and line["error_class"] == "BuildFailedError"
    assert line["repository"] == "demo/app" and line["builder"] == "FakeBuilder"
    assert "failed_step" in line and "secret-ish" not in json.dumps(line)


def test_steps_in_details_are_stored(context: Path, metrics_file: Path) -> None:
    class Profiled:
        @rtbuild.hookimpl(tryfirst=True)
        def build(self, request: BuildRequest) -> BuildResult:
            steps = [{"name": "[2/2] RUN sleep 2", "start": 1.0, "end": 3.0, "duration_s": 2.0, "cached": False}]
            return BuildResult(request.tags[0], list(request.tags), "fake", 2.0, details={"steps": steps})

    config = Config()
    pm = rtbuild.get_plugin_manager(config, load_entrypoints=False, extra_plugins=[metrics_plugin, Profiled()])
    rtbuild.run_build(BuildRequest(str(context), tags=["r/x:1"]), config=config, pm=pm, builder=FakeBuilder())
    (line,) = _lines(metrics_file)
    assert line["steps"] == [
        {"name": "[2/2] RUN sleep 2", "start": 1.0, "end": 3.0, "duration_s": 2.0, "cached": False}
    ]


def test_repository_strips_tag_and_digest_not_port() -> None:
    from rtbuild_metrics.record import repository

    assert repository("127.0.0.1:5000/a/b:1") == "127.0.0.1:5000/a/b"
    assert repository("127.0.0.1:5000/a/b") == "127.0.0.1:5000/a/b"
    assert repository("busybox@sha256:abc") == "busybox"


def test_a_warning_a_reporter_shows_is_not_also_a_python_warning(
    context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI printed 'warning: metrics: cannot open ...' twice: once for the reporter's
    event, once for the MetricsWarning. A Python warning is only for the library's default
    reporter, which shows nothing (the tests above)."""
    import io
    import warnings

    from rtbuild._framework.progress import PlainReporter, use_reporter

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be\n")
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(blocker / "metrics.jsonl"))
    shown = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, use_reporter(PlainReporter(shown)):
        warnings.simplefilter("always")
        assert _build(context, SizedBuilder()).image == "demo/app:1"
    assert shown.getvalue().count("warning: metrics: cannot open") == 1
    assert not [w for w in caught if issubclass(w.category, metrics_plugin.MetricsWarning)]


def test_a_record_appended_to_a_torn_line_is_read(tmp_path: Path) -> None:
    """A crash (or a full disk) cut the last write short and the next build's line joined
    the torn one: the report skipped both; it now reads the whole record after the tear."""
    from rtbuild._observe.report import load_records

    path = tmp_path / "metrics.jsonl"
    whole = json.dumps({"timestamp": "2026-12-01T10:00:00Z", "image": "a:1", "duration_s": 1.0})
    path.write_text(whole + '\n{"builder":"docker","cached":false,"dura')
    append_line(path, {"builder": "docker", "timestamp": "2026-12-01T12:00:00Z", "image": "a:2", "duration_s": 2.0})
    append_line(path, {"builder": "docker", "timestamp": "2026-12-01T13:00:00Z", "image": "a:3", "duration_s": 3.0})
    loaded = load_records(path)
    assert [r["image"] for r in loaded.records] == ["a:1", "a:2", "a:3"] and loaded.skipped == 1


def test_a_request_with_a_secret_still_warns_when_nothing_shows_events(
    context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core's mask (a secret-looking build arg) wrapped the library's silent reporter, so
    the plugin's "is anything showing my event?" check said yes and the warning went nowhere."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be\n")
    monkeypatch.setenv("RTBUILD_METRICS_FILE", str(blocker / "metrics.jsonl"))
    config = Config()
    pm = rtbuild.get_plugin_manager(config, load_entrypoints=False, extra_plugins=[metrics_plugin, ReuseExisting()])
    request = BuildRequest(str(context), tags=["demo/app:1"], build_args={"API_TOKEN": "s3cr3t-value"})
    with pytest.warns(metrics_plugin.MetricsWarning, match="not-a-dir"):
        rtbuild.run_build(request, config=config, pm=pm, builder=SizedBuilder())
