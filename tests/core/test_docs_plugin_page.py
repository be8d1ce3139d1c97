"""docs/writing-a-plugin.md and writing-a-builder.md as a contract, read as a third-party
developer reads them: the page's minimal plugin, installed from the page's own pyproject
entry points and module, does what the page says through the CLI; the trace the page shows
is the one ``--trace-hooks`` prints for it; the page's test examples pass as written; the
generator's commands install what ``pytest`` then needs. Also the mistakes a reader makes:
a hook left without ``@rtbuild.hookimpl``, a builder entry point naming a module or class
that is not there."""

from __future__ import annotations

import importlib
import re
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rtbuild import BuildRequest, Config
from rtbuild.testing import FakeBuilder, FakeSite, run_cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
PLUGIN_PAGE = DOCS / "writing-a-plugin.md"


def _blocks(page: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def _install_stamp(site: FakeSite) -> str:
    """The page's rtbuild-stamp, installed as its pyproject says; returns its module name."""
    pyproject = next(b for b in _blocks(PLUGIN_PAGE, "toml") if '"rtbuild.plugins"' in b)
    project = tomllib.loads(pyproject)["project"]
    source = next(b for b in _blocks(PLUGIN_PAGE, "python") if b.startswith("# src/rtbuild_stamp/"))
    path = source.splitlines()[0].removeprefix("# src/")  # hatch: packages = ["src/rtbuild_stamp"]
    entry_points = project["entry-points"]["rtbuild.plugins"]
    site.add(project["name"], version=project["version"], entry_points={"rtbuild.plugins": entry_points},
             modules={path: source})  # fmt: skip
    (module,) = entry_points.values()
    return str(module)


def _site_calls() -> list[dict[str, Any]]:
    return list(sys.modules["rtbuild_fake_fake_builder"].SiteBuilder.calls)


def test_the_minimal_plugin_loads_and_runs_as_the_page_says(rtbuild_site: FakeSite, context: Path) -> None:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    _install_stamp(rtbuild_site)
    listing = run_cli(["plugins", "--json"])
    (row,) = [r for r in listing.json() if r["name"] == "stamp"]
    assert (row["status"], row["hooks"]) == ("loaded", ["post_build", "pre_build"]), row
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "fake"])
    assert (result.exit_code, result.stdout) == (0, "app:1\n"), result.stderr
    assert "stamped app:1" in result.stderr  # its post_build, through the reporter
    (call,) = [c for c in _site_calls() if c.get("method", "build") == "build"]
    assert "--label" in call["extra_build_args"]


def test_the_minimal_plugins_label_keeps_an_unchanged_build_reusable(
    rtbuild_site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A label is an input: the page's plugin once stamped int(time.time()), so no build of an
    # unchanged context was ever a reuse (and the session page's `assert again.cached` failed
    # with the plugin installed).
    module = importlib.import_module(_install_stamp(rtbuild_site))
    labels = []
    for now in (1000.0, 2000.0):
        monkeypatch.setattr(time, "time", lambda now=now: now)
        request = BuildRequest("ctx", tags=["app:1"])
        module.pre_build(request=request, config=Config())
        labels.append(dict(request.labels))
    assert labels[0] and labels[0] == labels[1]


def test_the_trace_the_page_shows_is_the_one_printed(rtbuild_site: FakeSite, context: Path) -> None:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    _install_stamp(rtbuild_site)
    (shown,) = [b for b in _blocks(PLUGIN_PAGE, "text") if "rtbuild trace: pre_build -> [stamp]" in b]
    result = run_cli(["--trace-hooks", "build", str(context), "-t", "app:1", "--builder", "fake"])
    assert result.exit_code == 0, result.stderr

    def calls(text: str) -> list[str]:  # the hook calls and whom they reached; durations differ
        return [re.sub(r" in [\d.]+ ms$", "", line) for line in text.splitlines() if line.startswith("rtbuild trace:")]

    assert calls(result.stderr) == calls(shown)


def _page_tests() -> dict[str, Callable[..., None]]:
    namespace: dict[str, Any] = {}
    for block in _blocks(PLUGIN_PAGE, "python"):
        if "def test_" in block:
            exec(compile(block, str(PLUGIN_PAGE), "exec"), namespace)
    return {name: obj for name, obj in namespace.items() if name.startswith("test_")}


def test_the_page_has_test_examples(rtbuild_site: FakeSite) -> None:
    _install_stamp(rtbuild_site)
    assert set(_page_tests()) == {"test_stamp_adds_a_label", "test_misspelt_hook_is_reported"}


@pytest.mark.parametrize("name", ["test_stamp_adds_a_label", "test_misspelt_hook_is_reported"])
def test_the_pages_test_examples_pass_as_written(
    name: str,
    rtbuild_site: FakeSite,
    rtbuild_pm: Any,
    fake_builder: FakeBuilder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _install_stamp(rtbuild_site)  # `import rtbuild_stamp`: the reader's installed plugin
    fixtures = {"rtbuild_pm": rtbuild_pm, "fake_builder": fake_builder, "rtbuild_site": rtbuild_site,
                "monkeypatch": monkeypatch}  # fmt: skip
    test = _page_tests()[name]
    workdir = tmp_path / "example"
    workdir.mkdir()
    args = [
        workdir if arg == "tmp_path" else fixtures[arg]
        for arg in test.__code__.co_varnames[: test.__code__.co_argcount]
    ]
    test(*args)


# --- what a reader of the docs gets wrong ----------------------------------------------------

UNMARKED = """
import rtbuild
from os.path import join as build   # an imported helper named like a hook: not meant as one


def pre_build(request):             # the reader left @rtbuild.hookimpl off
    request.labels["policy"] = "checked"


@rtbuild.hookimpl
def post_build(result):
    pass
"""


def test_a_hook_left_without_hookimpl_is_named_in_a_warning(rtbuild_site: FakeSite, context: Path) -> None:
    # pluggy calls only marked functions: the plugin loaded, listed its other hook, and its
    # pre_build (a policy, say) never ran, without a word.
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add_plugin("rtbuild-policy", "policy", UNMARKED, version="0.2")
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "fake"])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: plugin 'policy' from rtbuild-policy 0.2 defines pre_build without @rtbuild.hookimpl, so"
        " rtbuild never calls it: mark it @rtbuild.hookimpl, or rename it"
    ]


@pytest.mark.parametrize(
    "value", ["rtbuild_not_installed.builder:RemoteBuilder", "rtbuild_fake_fake_builder:RemoteBuilder"]
)
def test_a_builder_entry_point_naming_nothing_is_blamed_on_it(
    rtbuild_site: FakeSite, context: Path, value: str
) -> None:
    rtbuild_site.add_builder("rtbuild-fake", "fake")  # its module exists, without that class
    rtbuild_site.add("rtbuild-remote", version="0.1.0", entry_points={"rtbuild.builders": {"remote": value}})
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "remote", "--json"])
    assert result.exit_code == 2, result.stderr
    error = result.json()
    assert error["error"] == "PluginError" and error["step"] == "load builder"
    assert "builder 'remote' from rtbuild-remote 0.1.0 failed to load" in error["message"]
    assert error["blame"] == "builder remote (rtbuild-remote 0.1.0)"  # was null: no `from:` line
    assert "from: builder remote (rtbuild-remote 0.1.0)" in result.stderr and "Traceback" not in result.stderr


def test_the_generators_install_line_brings_the_pytest_it_then_runs(tmp_path: Path) -> None:
    # `pip install ./rtbuild-acme2` then `pytest rtbuild-acme2` ran whichever pytest came first
    # on PATH (in a fresh venv: none, or another Python's, which cannot import rtbuild).
    (block,) = [b for b in _blocks(DOCS / "writing-a-builder.md", "sh") if "rtbuild new builder acme2" in b]
    (install,) = [line for line in block.splitlines() if line.startswith("pip install")]
    extra = re.search(r"rtbuild-acme2\[(\w+)\]", install)
    assert extra, f"the page installs the generated builder without its test extra: {install!r}"
    assert run_cli(["new", "builder", "acme2", "-o", str(tmp_path)]).exit_code == 0
    project = tomllib.loads((tmp_path / "rtbuild-acme2" / "pyproject.toml").read_text())["project"]
    assert any(req.startswith("pytest") for req in project["optional-dependencies"][extra.group(1)])


def test_no_plugins_is_accepted_after_the_command_as_debug_is(rtbuild_site: FakeSite, context: Path) -> None:
    # The pages write `rtbuild build ... --debug` and `--trace-hooks` after the command; the
    # same place for --no-plugins was 'No such option', with a did-you-mean of '--no-push'.
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    refusing = "import rtbuild\n\n@rtbuild.hookimpl\ndef pre_build(request):\n    raise rtbuild.PolicyError('no')\n"
    rtbuild_site.add_plugin("rtbuild-refuses", "refuses", refusing)
    assert run_cli(["build", str(context), "-t", "app:1", "--builder", "fake"]).exit_code == 2
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "fake", "--no-plugins"])
    assert (result.exit_code, result.stdout) == (0, "app:1\n"), result.stderr


NEEDS_ARGS = """
from rtbuild import RuntimeBuilder


class SiteBuilder(RuntimeBuilder):
    def __init__(self, endpoint):          # the reader's settings, but no from_config
        self.endpoint = endpoint

    def build(self, path, tags, platform=None, extra_build_args=None):
        return tags[0]

    def image_exists(self, image_name, pull_from_repo=True):
        return False
"""


@pytest.mark.parametrize(("command", "code"), [(["build", "CTX", "-t", "app:1"], 2), (["exists", "app:1"], 2)])
def test_a_builder_needing_init_arguments_without_from_config_says_so(
    rtbuild_site: FakeSite, context: Path, command: list[str], code: int
) -> None:
    # The default from_config calls cls(): it was 'internal error: TypeError: __init__() missing
    # 1 required positional argument', exit 1 (exists: 3, could not tell), 'report the authors'.
    rtbuild_site.add_builder("rtbuild-remote", "remote", version="0.1.0", source=NEEDS_ARGS)
    args = [str(context) if arg == "CTX" else arg for arg in command]
    result = run_cli([*args, "--builder", "remote", "--json"])
    assert result.exit_code == code, result.stderr
    error = result.json()
    assert (error["error"], error["step"]) == ("PluginError", "load builder")
    assert "cannot be created: its __init__ needs endpoint, and it does not override from_config" in error["message"]
    assert "from_config(cls, config, name)" in error["hint"]
    assert error["blame"] == "builder remote (rtbuild-remote 0.1.0)"
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    rows = {row["name"]: row for row in run_cli(["builders", "--json"]).json()}
    assert rows["remote"]["status"] == "failed" and "__init__ needs endpoint" in rows["remote"]["error"]


@pytest.mark.parametrize("group", ["rtbuild.plugin", "rtbuild_plugins"])
def test_an_entry_point_in_a_misspelt_group_is_warned_about(rtbuild_site: FakeSite, context: Path, group: str) -> None:
    # The page's pyproject with the group misspelt: the plugin was simply absent, not a word.
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    source = "import rtbuild\n\n@rtbuild.hookimpl\ndef pre_build(request):\n    pass\n"
    rtbuild_site.add("rtbuild-stamp", version="0.1.0", entry_points={group: {"stamp": "rtbuild_stamp"}},
                     modules={"rtbuild_stamp/__init__.py": source})  # fmt: skip
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "fake"])
    assert result.exit_code == 0, result.stderr
    assert (
        f"warning: rtbuild-stamp 0.1.0 declares entry point 'stamp' = 'rtbuild_stamp' in group '{group}', which"
        " rtbuild does not read (did you mean 'rtbuild.plugins'"
    ) in result.stderr
    assert "it reads rtbuild.builders and rtbuild.plugins" in result.stderr
    assert "stamp" not in [row["name"] for row in run_cli(["plugins", "--json"]).json()]


CLASS_PLUGIN = """
import rtbuild


class StampPlugin:
    @rtbuild.hookimpl
    def pre_build(self, request):
        request.labels["stamped"] = "yes"


plugin = StampPlugin()
"""


def test_an_entry_point_naming_a_class_with_hook_methods_asks_for_an_instance(
    rtbuild_site: FakeSite, context: Path
) -> None:
    # "a module (or any object)": the class is an object too, but pluggy calls its methods
    # unbound; every build was 'internal error: TypeError: StampPlugin.pre_build() missing 1
    # required positional argument', exit 1, 'report the authors'.
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    entry_points = {"rtbuild.plugins": {"cls": "rtbuild_cls:StampPlugin"}}
    rtbuild_site.add(
        "rtbuild-cls", version="0.1.0", entry_points=entry_points, modules={"rtbuild_cls.py": CLASS_PLUGIN}
    )
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "fake", "--json"])
    assert result.exit_code == 2, result.stderr
    error = result.json()
    assert error["error"] == "PluginError" and error["blame"] == "plugin cls (rtbuild-cls 0.1.0)"
    assert "names the class StampPlugin, whose hook method pre_build takes self" in error["message"]
    assert '"rtbuild_cls:plugin"' in error["hint"]
    listing = {row["name"]: row for row in run_cli(["plugins", "--json"]).json()}
    assert listing["cls"]["status"] == "failed"


def test_an_entry_point_naming_an_instance_works(rtbuild_site: FakeSite, context: Path) -> None:
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add("rtbuild-cls", entry_points={"rtbuild.plugins": {"cls": "rtbuild_cls:plugin"}},
                     modules={"rtbuild_cls.py": CLASS_PLUGIN})  # fmt: skip
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "fake"])
    assert result.exit_code == 0, result.stderr
    (call,) = [c for c in _site_calls() if c.get("method", "build") == "build"]
    assert "stamped=yes" in call["extra_build_args"]


def test_a_wrapper_that_does_not_yield_is_explained(rtbuild_site: FakeSite, context: Path) -> None:
    # The retry wrapper of the hooks page, written without its yield: pluggy's own text
    # ('Declared as wrapper=True or hookwrapper=True but function is not a generator
    # function', three lines) came with no hint.
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    source = "import rtbuild\n\n@rtbuild.hookimpl(wrapper=True)\ndef build(request, builder):\n    return None\n"
    rtbuild_site.add_plugin("rtbuild-retry", "retry", source)
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "fake", "--json"])
    assert result.exit_code == 2, result.stderr
    error = result.json()
    assert error["message"] == (
        "plugin 'retry' from rtbuild-retry 1.0 is invalid: its build hook is marked wrapper=True but does not yield"
    )
    assert "`result = yield`" in error["hint"] and error["blame"] == "plugin retry (rtbuild-retry 1.0)"


def test_the_v1_flag_order_is_the_one_structured_args_gives() -> None:
    from rtbuild import BuildSecret

    page = (DOCS / "writing-a-builder.md").read_text(encoding="utf-8")
    block = page.split("### What v1 builders get", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    documented = [token for token in block.split() if token.startswith("-")]
    request = BuildRequest(
        ".", tags=["a:1"], dockerfile="D", build_args={"K": "V"}, labels={"L": "M"}, target="t", no_cache=True,
        secrets=[BuildSecret("s", src="/f")], cache_from=["c1"], cache_to=["c2"], extra_build_args=["EXTRA"],
    )  # fmt: skip
    args = request.structured_args()
    assert [a for a in args if a.startswith("-")] == documented and args[-1] == "EXTRA"


RUNTIME_TOOLS = """
import rtbuild
from rtbuild import RuntimeRequirements


class Tool:
    order = 0

    def __init__(self, name):
        self.name = name

    def requirements(self, config):
        return RuntimeRequirements(files={f"/opt/{self.name}": config.plugin_config(self.name).get("text", "")})


@rtbuild.hookimpl
def runtime_plugins(config):
    return [Tool("tool-a"), Tool("tool-b")]
"""


def test_a_runtime_plugins_own_table_is_no_unknown_table(
    rtbuild_site: FakeSite, context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # hooks.md: a runtime plugin's settings are config.plugin_config(NAME), NAME its runtime
    # plugin name; one entry point offering tool-a and tool-b got 'warning: [plugins.tool-a]
    # configures no installed plugin' on every run for the tables the docs told it to read.
    rtbuild_site.add_builder("rtbuild-fake", "fake")
    rtbuild_site.add_plugin("rtbuild-acme-tools", "acme-tools", RUNTIME_TOOLS)
    (tmp_path / "rtbuild.toml").write_text('[plugins.tool-a]\ntext = "a"\n\n[plugins.tool-c]\ntext = "c"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli(["build", str(context), "-t", "app:1", "--builder", "fake"])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "[plugins.tool-c] configures no installed plugin (did you mean" in warnings[0]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"tags": "app:1"}, "BuildRequest.tags is str, not a list of strings"),  # was: invalid image reference '-'
        ({"tags": ["app:1"], "push": "no"}, "BuildRequest.push is str, not True, False or None"),  # truthy: pushed
        ({"tags": ["app:1"], "build_args": {"A": None}}, "BuildRequest.build_args maps 'A' to None, not a string"),
    ],
)
def test_an_api_request_with_a_field_of_the_wrong_type_is_refused_naming_it(
    rtbuild_pm: Any, fake_builder: FakeBuilder, context: Path, fields: dict[str, Any], problem: str
) -> None:
    from rtbuild import run_build
    from rtbuild.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        run_build(BuildRequest(str(context), **fields), config=Config(), pm=rtbuild_pm, builder=fake_builder)
    assert caught.value.message == problem and caught.value.step == "validate request"
    assert fake_builder.calls == []


def test_tuples_and_mappings_are_taken_as_the_lists_and_dicts_they_stand_for(
    rtbuild_pm: Any, fake_builder: FakeBuilder, context: Path
) -> None:
    """``tags=("app:1",)`` worked before the type check and must keep working: refusing it
    broke callers that build their tags as tuples."""
    import types

    from rtbuild import run_build

    request = BuildRequest(str(context), tags=("app:1", "app:latest"), build_args=types.MappingProxyType({"A": "1"}))
    run_build(request, config=Config(), pm=rtbuild_pm, builder=fake_builder)
    assert request.tags == ["app:1", "app:latest"] and request.build_args == {"A": "1"}
    assert len(fake_builder.calls) == 1


def test_the_plugins_listings_error_field_reads_as_documented(rtbuild_site: FakeSite) -> None:
    cli_page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert "`ExceptionType: message` when it raised on import, `invalid: ...`" in cli_page
    rtbuild_site.add("rtbuild-gone", entry_points={"rtbuild.plugins": {"gone": "rtbuild_not_installed_mod"}})
    rtbuild_site.add_plugin(
        "rtbuild-typo", "typo", "import rtbuild\n\n@rtbuild.hookimpl\ndef pre_biuld(request):\n    pass\n"
    )
    rows = {row["name"]: row for row in run_cli(["plugins", "--json"]).json()}
    assert rows["gone"]["error"].startswith("ModuleNotFoundError: ")
    assert rows["typo"]["error"].startswith("invalid: 'pre_biuld' is not an rtbuild hook")


def test_rtbuild_plugins_shows_what_a_plugin_author_debugs_with(rtbuild_site: FakeSite) -> None:
    # The page's Debugging section starts at `rtbuild plugins`; it dropped every warning,
    # so a plugin in a misspelt group or a hook without @rtbuild.hookimpl went unexplained
    # exactly there (a build showed them). A failed plugin stays in the table, not repeated.
    rtbuild_site.add_plugin("rtbuild-policy", "policy", UNMARKED, version="0.2")
    rtbuild_site.add("rtbuild-stamp", version="0.1.0", entry_points={"rtbuild.plugin": {"stamp": "rtbuild_stamp"}})
    rtbuild_site.add("rtbuild-gone", entry_points={"rtbuild.plugins": {"gone": "rtbuild_not_installed_mod"}})
    result = run_cli(["plugins"])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, result.stderr
    assert "defines pre_build without @rtbuild.hookimpl" in warnings[0] + warnings[1]
    assert "in group 'rtbuild.plugin', which rtbuild does not read" in warnings[0] + warnings[1]
    assert "gone: ModuleNotFoundError" in result.stderr  # the listing's own error lines, as before
