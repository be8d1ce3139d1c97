"""Runtime payloads and layering without an engine: bounded COPY layers, source-group order,
the layer budget, payloads from directories and installed distributions, and exact hits
that write nothing (checked: no temporary directory is made, the temp dir stays empty)."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import rtbuild
from rtbuild._framework.config import Config
from rtbuild._framework.plugins import RtbuildPluginManager, get_plugin_manager
from rtbuild.errors import BuildContextError, ConfigError, PluginError
from rtbuild.runtime import SourcePayload
from rtbuild.runtime._build import build_runtime_image
from rtbuild.runtime._compose import MAX_RUNTIME_LAYERS, count_layers, render
from rtbuild.runtime._payload import resolve
from rtbuild.runtime._plugin import RuntimeRequirements
from rtbuild.runtime._select import compose_runtime
from rtbuild.testing import FakeBuilder


@dataclass
class Plugin:
    name: str
    req: RuntimeRequirements = field(default_factory=RuntimeRequirements)
    order: int = 0

    def requirements(self, config: Config) -> RuntimeRequirements:
        return self.req


class Offer:
    def __init__(self, *plugins: Any) -> None:
        self.plugins = list(plugins)

    @rtbuild.hookimpl
    def runtime_plugins(self, config: Config) -> list[Any]:
        return self.plugins


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stat caches and staging directories of these payloads stay in the test's directory.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def make_pm(*plugins: Any) -> RtbuildPluginManager:
    return get_plugin_manager(Config(), load_entrypoints=False, extra_plugins=[Offer(*plugins)])


def config() -> Config:
    cfg = Config()
    cfg.runtime.repo = "rt/test"
    return cfg


def make_tree(root: Path, count: int, *, per_dir: int = 100) -> list[Path]:
    """``count`` small files in nested directories; every 7th executable."""
    paths = []
    for index in range(count):
        path = root / f"d{index // per_dir:03d}" / "sub" / f"f{index:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# file {index}\nVALUE = {index}\n")
        if index % 7 == 0:
            path.chmod(0o755)
        paths.append(path)
    return paths


def copies(dockerfile: str) -> list[str]:
    return [line for line in dockerfile.splitlines() if line.startswith("COPY ")]


# --- bounded layers ----------------------------------------------------------------------


def test_many_files_become_one_copy_per_image_directory() -> None:
    files = {f"/opt/many/f{index:04d}.txt": str(index) for index in range(1000)}
    files["/usr/local/bin/start"] = "#!/bin/sh\n"
    comp = render("busybox:latest", [("p", RuntimeRequirements(files=files, dependency_files={"/etc/a": "1"}))])
    assert copies(comp.source.dockerfile) == ['COPY ["src/p/0/", "/opt/many/"]', 'COPY ["src/p/1/", "/usr/local/bin/"]']
    assert copies(comp.deps.dockerfile) == ['COPY ["deps/p/0/", "/etc/"]']
    assert len(comp.source.files) == 1001 and comp.layers == {"p": 3}


def test_a_payload_tree_is_one_copy_whatever_its_size(tmp_path: Path) -> None:
    make_tree(tmp_path / "agent", 1000)
    req = RuntimeRequirements(payloads=[SourcePayload.directory(tmp_path / "agent", "/opt/agent")])
    comp = render("busybox:latest", [("agent", req)])
    assert copies(comp.source.dockerfile) == ['COPY ["src/agent/payload-0/", "/opt/agent/"]']
    assert comp.source.trees[0].payload.files == 1000 and comp.source.files == []


def test_count_layers_joins_continuations_and_skips_config_instructions() -> None:
    text = "FROM x\nENV A=1\nRUN a \\\n  && RUN-not-an-instruction\n# RUN comment\nCOPY a b\nLABEL x=1\nWORKDIR /w\n"
    assert count_layers(text) == 3


def test_layer_budget_is_an_error_before_any_build() -> None:
    heavy = Plugin("heavy", RuntimeRequirements(dockerfile="\n".join(["RUN true"] * (MAX_RUNTIME_LAYERS + 1))))
    builder = FakeBuilder()
    with pytest.raises(ConfigError) as info:
        build_runtime_image(config(), "busybox:latest", ["heavy"], pm=make_pm(heavy), builder=builder)
    assert f"{MAX_RUNTIME_LAYERS + 1} layers" in info.value.message and "heavy" in info.value.message
    assert info.value.hint and not [c for c in builder.calls if c["method"] == "build"]


def test_a_dozen_typical_plugins_fit_the_budget(tmp_path: Path) -> None:
    make_tree(tmp_path / "code", 3)

    def typical(index: int) -> tuple[str, RuntimeRequirements]:
        return (
            f"p{index:02d}",
            RuntimeRequirements(
                dockerfile=f"RUN echo {index}",
                dependency_files={f"/opt/p{index}/requirements.txt": "x==1\n"},
                files={f"/opt/p{index}/start": "#!/bin/sh\n", f"/opt/p{index}/conf.toml": "a = 1\n"},
                payloads=[SourcePayload.directory(tmp_path / "code", f"/opt/p{index}/code")],
            ),
        )

    dozen = [typical(index) for index in range(12)]
    comp = render("busybox:latest", dozen)
    assert comp.layers == {name: 4 for name, _ in dozen}  # 1 RUN, 1 COPY each for deps, files, payload
    assert sum(comp.layers.values()) == 48 <= MAX_RUNTIME_LAYERS
    with pytest.raises(ConfigError, match="would add 68 layers"):
        render("busybox:latest", [typical(index) for index in range(17)])


# --- order: the most volatile source groups last -------------------------------------------


def test_payload_groups_go_after_plain_source_groups_and_volatility_overrides(tmp_path: Path) -> None:
    make_tree(tmp_path / "code", 3)
    code = RuntimeRequirements(payloads=[SourcePayload.directory(tmp_path / "code", "/opt/code")])
    early = Plugin("early", code, order=-50)
    late = Plugin("late", RuntimeRequirements(files={"/opt/late.txt": "x"}), order=50)
    pinned = Plugin("pinned", RuntimeRequirements(files={"/opt/pinned.txt": "x"}, volatility=20))
    comp = compose_runtime(
        config(),
        "busybox:latest",
        ["early", "late", "pinned"],
        pm=make_pm(early, late, pinned),
        extra_files={"/opt/marker": "m"},
    )
    groups = [line.removeprefix("# -- ") for line in comp.source.dockerfile.splitlines() if line.startswith("# --")]
    assert groups == ["late: source", "early: source", "pinned: source", "extra-files: source"]
    deps_order = comp.plugins
    assert deps_order[:3] == ["early", "pinned", "late"]  # the dependency stage keeps (order, name)


# --- payloads ------------------------------------------------------------------------------


def test_directory_payload_honours_dockerignore_and_excludes(tmp_path: Path) -> None:
    root = tmp_path / "agent"
    make_tree(root, 10, per_dir=5)
    (root / "secret.env").write_text("TOKEN=1\n")
    (root / "notes.log").write_text("log\n")
    (root / ".dockerignore").write_text("*.env\n")
    spec = SourcePayload.directory(root, "/opt/agent", exclude=("*.log",))
    comp = render("busybox:latest", [("agent", RuntimeRequirements(payloads=[spec]))])
    out = Path(comp.source.write(tmp_path / "ctx"))
    tree = out / "src/agent/payload-0"
    placed = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())
    assert "secret.env" not in placed and "notes.log" not in placed and ".dockerignore" in placed
    assert len([p for p in placed if p.endswith(".py")]) == 10
    original = root / "d000/sub/f00000.py"
    copy = out / "src/agent/payload-0/d000/sub/f00000.py"
    assert copy.read_bytes() == original.read_bytes() and copy.stat().st_mode == original.stat().st_mode


def test_payload_change_moves_only_the_source_hash(tmp_path: Path) -> None:
    paths = make_tree(tmp_path / "agent", 50)

    def hashes() -> tuple[str, str]:
        spec = SourcePayload.directory(tmp_path / "agent", "/opt/agent")
        comp = render("busybox:latest", [("agent", RuntimeRequirements(dockerfile="RUN true", payloads=[spec]))])
        return comp.lock_hash, comp.source_hash

    first = hashes()
    paths[-1].write_text("changed\n")
    second = hashes()
    paths[0].chmod(0o700)
    third = hashes()
    assert first[0] == second[0] == third[0]
    assert len({first[1], second[1], third[1]}) == 3


def _install_fake_distribution(site: Path) -> None:
    pkg = site / "rtpayload_demo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "server.py").write_text("def main():\n    return 0\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"\0pyc")
    info = site / "rtpayload_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rtpayload-demo\nVersion: 1.0\n")
    record = [
        "rtpayload_demo/__init__.py,,",
        "rtpayload_demo/server.py,,",
        "rtpayload_demo/__pycache__/server.cpython-311.pyc,,",
        "rtpayload_demo/gone.py,,",  # listed but deleted since: not installed any more
        "../../bin/rtpayload-demo,,",  # outside the install root
        "rtpayload_demo-1.0.dist-info/METADATA,,",
        "rtpayload_demo-1.0.dist-info/RECORD,,",
    ]
    (info / "RECORD").write_text("\n".join(record) + "\n")


def test_a_link_in_a_distribution_is_staged_as_a_link_and_its_target_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A RECORD lists a link like a file: it was staged with the link's mode put back
    # through the link, so the host file it points to became mode 0777 (and got its times).
    host = tmp_path / "host-secret.txt"
    host.write_text("not for the image\n")
    host.chmod(0o600)
    os.utime(host, (1_000_000_000, 1_000_000_000))
    site = tmp_path / "site"
    pkg, info = site / "linkdemo", site / "linkdemo-1.0.dist-info"
    pkg.mkdir(parents=True)
    info.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "data.txt").symlink_to(host)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: linkdemo\nVersion: 1.0\n")
    (info / "RECORD").write_text("linkdemo/__init__.py,,\nlinkdemo/data.txt,,\nlinkdemo-1.0.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    comp = render("busybox:latest", [("demo", RuntimeRequirements(payloads=[SourcePayload.parse("linkdemo")]))])
    out = Path(comp.source.write(tmp_path / "ctx"))
    staged = out / "src/demo/payload-0/linkdemo/data.txt"
    assert staged.is_symlink() and os.readlink(staged) == str(host)
    assert host.stat().st_mode & 0o7777 == 0o600 and host.stat().st_mtime == 1_000_000_000
    comp.source.write(tmp_path / "ctx")  # a second sync (the copy is kept) leaves it alone too
    assert host.stat().st_mode & 0o7777 == 0o600


def test_staging_never_writes_through_a_link_an_earlier_payload_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same composition (--source is always 'extra-source'), so the same staging tree: the
    # directory payload staged ns -> a host directory; the distribution's ns/sub/x.py (a
    # namespace package: no ns/__init__.py) then made ns/sub *through* that link, on the host.
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "ns").symlink_to(host_dir)
    site = tmp_path / "site"
    (site / "ns" / "sub").mkdir(parents=True)
    (site / "ns" / "sub" / "x.py").write_text("X = 1\n")
    (site / "nsdemo-1.0.dist-info").mkdir()
    (site / "nsdemo-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: nsdemo\nVersion: 1.0\n")
    (site / "nsdemo-1.0.dist-info" / "RECORD").write_text("ns/sub/x.py,,\nnsdemo-1.0.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    builder = FakeBuilder()
    for spec in (f"{agent}:/opt/code", "nsdemo:/opt/code"):
        payloads = [SourcePayload.parse(spec)]
        build_runtime_image(config(), "busybox:latest", [], payloads=payloads, pm=make_pm(), builder=builder)
    staged = Path([c for c in builder.calls if c["method"] == "build"][-1]["path"], "src/extra-source/payload-0")
    assert (staged / "ns" / "sub" / "x.py").read_text() == "X = 1\n" and not (staged / "ns").is_symlink()
    assert list(host_dir.iterdir()) == []


def test_distribution_payload_takes_its_files_as_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _install_fake_distribution(site)
    monkeypatch.syspath_prepend(str(site))
    spec = SourcePayload.parse("rtpayload-demo:/opt/demo")
    assert (spec.kind, spec.dest) == ("distribution", "/opt/demo")
    comp = render("busybox:latest", [("demo", RuntimeRequirements(payloads=[spec]))])
    tree = comp.source.trees[0].payload
    assert [rel for rel, _ in tree.entries()] == [
        "rtpayload_demo-1.0.dist-info/METADATA",
        "rtpayload_demo-1.0.dist-info/RECORD",
        "rtpayload_demo/__init__.py",
        "rtpayload_demo/server.py",
    ]
    out = Path(comp.source.write(tmp_path / "ctx"))
    assert (out / "src/demo/payload-0/rtpayload_demo/server.py").read_text() == "def main():\n    return 0\n"
    before = comp.source_hash
    (site / "rtpayload_demo" / "server.py").write_text("def main():\n    return 1\n")
    after = render("busybox:latest", [("demo", RuntimeRequirements(payloads=[spec]))]).source_hash
    assert before != after


def test_source_payload_parse(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    assert SourcePayload.parse(str(tmp_path / "code")) == SourcePayload(
        str(tmp_path / "code"), "/opt/rtbuild/payload/code", "directory"
    )
    assert SourcePayload.parse(f"{tmp_path / 'code'}:/srv/app").dest == "/srv/app"
    assert SourcePayload.parse("some-dist").dest == "/opt/rtbuild/payload/some-dist"
    with pytest.raises(ConfigError, match="is not a directory"):
        SourcePayload.parse(str(tmp_path / "missing"))
    # A relative destination is named as the mistake, for a directory and a distribution alike.
    for spec in (f"{tmp_path / 'code'}:srv/app", "some-dist:srv/app"):
        with pytest.raises(ConfigError, match="'srv/app' is not an absolute path in the image") as info:
            SourcePayload.parse(spec)
        assert info.value.hint == f"write it as {spec.rsplit(':', 1)[0]}:/srv/app"
    # A bad --exclude pattern is named as one, not as a line of a .dockerignore.
    with pytest.raises(ConfigError, match=r"bad exclude pattern '\[': missing closing \]") as bad:
        resolve("p", SourcePayload.parse(str(tmp_path / "code"), exclude=("*.pyc", "[")))
    assert bad.value.step == "compose runtime image" and "--exclude" in (bad.value.hint or "")


def test_unknown_distribution_and_missing_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no installed distribution named 'no-such-dist-xyz'"):
        render(
            "busybox:latest", [("p", RuntimeRequirements(payloads=[SourcePayload.distribution("no-such-dist-xyz")]))]
        )
    with pytest.raises(BuildContextError, match="is not a directory"):
        render("busybox:latest", [("p", RuntimeRequirements(payloads=[SourcePayload(str(tmp_path / "x"), "/opt/x")]))])


def test_a_directory_mode_change_stages_the_tree_under_a_new_name(tmp_path: Path) -> None:
    # BuildKit keeps a COPY cached when only a directory's mode changed (moby/buildkit#7176):
    # the staged tree's name, which the COPY names, carries its directories' modes.
    root = tmp_path / "agent"
    make_tree(root, 3)
    for path in (root, *[p for p in root.rglob("*") if p.is_dir()]):
        path.chmod(0o755)
    spec = SourcePayload.directory(root, "/opt/agent")

    def staged() -> tuple[list[str], list[str]]:
        comp = render("busybox:latest", [("agent", RuntimeRequirements(payloads=[spec]))])
        out = Path(comp.source.write(tmp_path / "ctx"))
        return sorted(p.name for p in (out / "src/agent").iterdir()), copies((out / "Dockerfile").read_text())

    assert staged() == (["payload-0"], ['COPY ["src/agent/payload-0/", "/opt/agent/"]'])
    (root / "d000" / "sub").chmod(0o700)
    names, lines = staged()
    assert len(names) == 1 and names[0].startswith("payload-0.m") and len(names[0]) == len("payload-0.m") + 12
    assert lines == [f'COPY ["src/agent/{names[0]}/", "/opt/agent/"]']
    assert (tmp_path / "ctx" / "src/agent" / names[0] / "d000" / "sub").stat().st_mode & 0o777 == 0o700
    (root / "d000" / "sub").chmod(0o750)
    assert staged()[0] not in ([names[0]], ["payload-0"])
    # The whole tree under another umask is keyed too (its root's mode is the baseline).
    for path in (root, *[p for p in root.rglob("*") if p.is_dir()]):
        path.chmod(0o775)
    assert staged()[0][0].startswith("payload-0.m")
    for path in (root, *[p for p in root.rglob("*") if p.is_dir()]):
        path.chmod(0o755)
    assert staged() == (["payload-0"], ['COPY ["src/agent/payload-0/", "/opt/agent/"]'])


def test_two_source_payloads_for_one_destination_say_so(tmp_path: Path) -> None:
    # They read "runtime plugin 'extra-source': place a payload in /opt/x", with a hint to
    # select only one of two plugins.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for second, fragment in (("/opt/x", "places two payloads in /opt/x"), ("/opt/x/sub", "one inside the other")):
        payloads = [SourcePayload.parse(f"{tmp_path / 'a'}:/opt/x"), SourcePayload.parse(f"{tmp_path / 'b'}:{second}")]
        with pytest.raises(PluginError) as info:
            build_runtime_image(config(), "busybox:latest", [], payloads=payloads, pm=make_pm(), builder=FakeBuilder())
        assert info.value.message.startswith("the --source payloads clash: ") and fragment in info.value.message
        assert "--source" in (info.value.hint or "") and "select only one" not in (info.value.hint or "")
    twice = Plugin("twice", RuntimeRequirements(payloads=[SourcePayload.parse(f"{tmp_path / n}:/opt/y") for n in "ab"]))
    with pytest.raises(PluginError, match="runtime plugin 'twice' places two payloads in /opt/y"):
        build_runtime_image(config(), "busybox:latest", ["twice"], pm=make_pm(twice), builder=FakeBuilder())


def test_payload_destinations_must_not_overlap(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    outer = RuntimeRequirements(payloads=[SourcePayload.directory(tmp_path / "a", "/opt/app")])
    inner = RuntimeRequirements(files={"/opt/app/config.toml": "x"})
    with pytest.raises(PluginError, match="inside the payload directory /opt/app"):
        render("busybox:latest", [("outer", outer), ("inner", inner)])


# --- exact hits touch nothing ----------------------------------------------------------------


def test_exact_hit_makes_no_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path / "agent", 1000)
    agent = Plugin("agent", RuntimeRequirements(payloads=[SourcePayload.directory(tmp_path / "agent", "/opt/agent")]))
    pm, builder, cfg = make_pm(agent), FakeBuilder(), config()
    first = build_runtime_image(cfg, "busybox:latest", ["agent"], pm=pm, builder=builder)
    assert first.details["runtime_tier"] == "scratch" and first.details["payload_files"] == 1000

    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_tmp))
    made: list[Any] = []
    real_mkdtemp = tempfile.mkdtemp

    def watched(*args: Any, **kwargs: Any) -> str:
        made.append((args, kwargs))
        return real_mkdtemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", watched)
    again = build_runtime_image(cfg, "busybox:latest", ["agent"], pm=pm, builder=builder)
    assert again.details["runtime_tier"] == "exact" and again.image == first.image
    assert made == [] and list(scratch_tmp.iterdir()) == []

    # A source change is written to the composition's staging directory (kept between
    # builds, so only the changed file is copied), not to a temporary one either.
    changed_file = tmp_path / "agent" / "d000" / "sub" / "f00000.py"
    changed_file.write_text("changed\n")
    changed = build_runtime_image(cfg, "busybox:latest", ["agent"], pm=pm, builder=builder)
    assert changed.details["runtime_tier"] == "lock" and made == []
    stage = Path([c for c in builder.calls if c["method"] == "build"][-1]["path"])
    assert (stage / "src/agent/payload-0/d000/sub/f00000.py").read_text() == "changed\n"
    assert len(list((stage / "src/agent/payload-0").rglob("*.py"))) == 1000


def test_exact_hit_reads_no_unchanged_payload_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path / "agent", 200)
    agent = Plugin("agent", RuntimeRequirements(payloads=[SourcePayload.directory(tmp_path / "agent", "/opt/agent")]))
    pm, builder, cfg = make_pm(agent), FakeBuilder(), config()
    from rtbuild.context import _hashing

    # Files written this second are "racy" (not trusted from the cache); that window is
    # the hashing suite's business: here the files count as old.
    monkeypatch.setattr(_hashing, "_RACY_NS", 0)
    build_runtime_image(cfg, "busybox:latest", ["agent"], pm=pm, builder=builder)

    reads: list[str] = []
    real = _hashing.hash_file
    monkeypatch.setattr(_hashing, "hash_file", lambda path, size=None: reads.append(path) or real(path, size))
    again = build_runtime_image(cfg, "busybox:latest", ["agent"], pm=pm, builder=builder)
    assert again.details["runtime_tier"] == "exact" and reads == []


def test_in_a_build_session_an_exact_hit_walks_no_payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = make_tree(tmp_path / "agent", 300)
    agent = Plugin("agent", RuntimeRequirements(payloads=[SourcePayload.directory(tmp_path / "agent", "/opt/agent")]))
    cfg = config()
    builder = FakeBuilder()
    from rtbuild.runtime import _payload

    walks: list[str] = []
    real = _payload.hash_context
    monkeypatch.setattr(_payload, "hash_context", lambda root, *a, **k: walks.append(root) or real(root, *a, **k))
    with rtbuild.BuildSession(cfg, pm=make_pm(agent), builder=builder) as session:
        first = session.get_runtime_image("busybox:latest", ["agent"])
        walks.clear()
        for _ in range(3):
            assert session.get_runtime_image("busybox:latest", ["agent"]) == first
        assert walks == []  # the session's inotify watch vouches for the unchanged payload
        paths[-1].write_text("changed\n")  # and sees a change
        assert session.get_runtime_image("busybox:latest", ["agent"]) != first


def test_an_editable_distribution_points_at_its_directory() -> None:
    # rtbuild itself is installed editable in the dev venv: its RECORD holds a .pth, not its code.
    with pytest.raises(ConfigError) as info:
        render("busybox:latest", [("p", RuntimeRequirements(payloads=[SourcePayload.distribution("rtbuild")]))])
    assert "editable" in info.value.message and info.value.hint and "--source " in info.value.hint


def test_staging_directories_unused_for_days_are_removed(tmp_path: Path) -> None:
    from rtbuild.runtime._build import STAGE_MAX_AGE_S

    stages = tmp_path / "xdg-cache" / "rtbuild" / "runtime" / "stage"
    stale, recent = stages / "0123456789abcdef", stages / "fedcba9876543210"
    for directory in (stale, recent):
        (directory / "src").mkdir(parents=True)
    old = time.time() - STAGE_MAX_AGE_S - 60
    os.utime(stale, (old, old))
    small = Plugin("a", RuntimeRequirements(files={"/opt/a.txt": "a"}))
    build_runtime_image(config(), "busybox:latest", ["a"], pm=make_pm(small), builder=FakeBuilder())
    assert not stale.exists() and recent.exists()
    assert len(list(stages.iterdir())) == 2  # the recent one and the one this build used


def test_a_staged_copy_of_a_file_rewritten_with_its_old_mtime_is_replaced(tmp_path: Path) -> None:
    """`cp -p`/`tar x`/`rsync -a` rewrite a file and put its mtime back: the staged copy has
    the same size and mtime as the new source, and must still be copied again."""
    from rtbuild.runtime._payload import resolve

    source = tmp_path / "code"
    source.mkdir()
    app = source / "app.py"
    app.write_text("VERSION = '1'\n")
    old = time.time_ns() - 10_000_000_000
    os.utime(app, ns=(old, old))
    spec = SourcePayload(str(source), "/opt/code")
    stage = tmp_path / "stage"
    resolve("p", spec).sync(str(stage))
    assert (stage / "app.py").read_text() == "VERSION = '1'\n"
    app.write_text("VERSION = '2'\n")  # same size
    os.utime(app, ns=(old, old))  # and the old mtime back
    second = resolve("p", spec)
    second.sync(str(stage))
    assert (stage / "app.py").read_text() == "VERSION = '2'\n", "the staged copy kept the old content"


@pytest.mark.parametrize("switch", ["another directory", "a directory moved into place", "a switched symlink"])
def test_a_staged_copy_from_another_tree_with_equal_stat_data_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    """Release v2 sits in another tree (or is moved over v1, or a symlink is switched to
    it), its files written before the staged copies of v1 were made, with the same sizes
    and mtimes (reproducible builds, `cp -p`, `git archive`): the copies must be replaced,
    or the image built under v2's tag would hold v1."""
    from rtbuild.runtime import _payload
    from rtbuild.runtime._payload import resolve

    monkeypatch.setattr(_payload, "_RACY_NS", -1)  # trust any copy by time: only the source's identity decides
    old = time.time_ns() - 3600 * 10**9
    trees = {}
    for version in ("1", "2"):
        tree = tmp_path / f"rel-v{version}"
        (tree / "pkg").mkdir(parents=True)
        for rel in ("ver.py", "pkg/data.txt"):
            (tree / rel).write_text(f"VERSION = '1.0.{version}'\n")
            os.utime(tree / rel, ns=(old, old))
        trees[version] = tree
    if switch == "another directory":
        first, second = trees["1"], trees["2"]
    elif switch == "a directory moved into place":
        first = second = tmp_path / "current"
        trees["1"].rename(first)
    else:
        first = second = tmp_path / "current"
        first.symlink_to(trees["1"])
    stage, record = tmp_path / "stage" / "code", str(tmp_path / "stage.sources" / "code")
    resolve("p", SourcePayload(str(first), "/opt/code")).sync(str(stage), record)
    assert (stage / "ver.py").read_text() == "VERSION = '1.0.1'\n"
    if switch == "a directory moved into place":
        import shutil

        shutil.rmtree(first)
        trees["2"].rename(second)
    elif switch == "a switched symlink":
        first.unlink()
        first.symlink_to(trees["2"])
    resolve("p", SourcePayload(str(second), "/opt/code")).sync(str(stage), record)
    assert (stage / "ver.py").read_text() == "VERSION = '1.0.2'\n"
    assert (stage / "pkg" / "data.txt").read_text() == "VERSION = '1.0.2'\n"
    # Unchanged since: nothing is copied again (the copy keeps its inode).
    inode = (stage / "ver.py").stat().st_ino
    resolve("p", SourcePayload(str(second), "/opt/code")).sync(str(stage), record)
    assert (stage / "ver.py").stat().st_ino == inode


class BrokenPlugin(Plugin):
    def requirements(self, config: Config) -> RuntimeRequirements:
        if self.name == "badconfig":
            raise ConfigError("bundle missing", step="cacerts plugin: read [plugins.cacerts]")
        raise ValueError("a bug in requirements()")


@pytest.mark.parametrize("name", ["badconfig", "buggy"])
def test_an_error_in_a_runtime_plugins_requirements_names_the_plugin(name: str) -> None:
    with pytest.raises(Exception) as info:
        compose_runtime(config(), "busybox:latest", [name], pm=make_pm(BrokenPlugin(name)))
    from rtbuild._framework.plugins._trace import blamed_on

    assert blamed_on(info.value) == f"runtime plugin {name} ({__name__})"


def test_payload_names_with_line_breaks_other_than_newline_are_copied(tmp_path: Path) -> None:
    """macOS leaves `Icon\\r` files; str.splitlines() cut names at CR, \\x1c, \\u2028, ..."""
    from rtbuild.runtime._payload import resolve

    source = tmp_path / "odd"
    source.mkdir()
    names = ["Icon\r", "a\x1cb", "c\u2028d", "plain"]
    for name in names:
        (source / name).write_text(name)
    stage = tmp_path / "stage"
    resolve("p", SourcePayload(str(source), "/opt/odd")).sync(str(stage))
    assert sorted(os.listdir(stage)) == sorted(names)
    assert (stage / "Icon\r").read_bytes() == b"Icon\r"
    (source / "new\nline").write_text("x")
    with pytest.raises(BuildContextError, match="holds a newline") as info:
        resolve("p", SourcePayload(str(source), "/opt/odd")).sync(str(stage))
    assert info.value.hint and "exclude" in info.value.hint
