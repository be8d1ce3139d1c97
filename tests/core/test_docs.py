"""The docs keep up with the code: every hook, CLI command/option, config key and env var is
documented, every hook is exercised by a test, and the mkdocs nav lists every page."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from rtbuild import hookspecs
from rtbuild._framework import config as config_module
from rtbuild.cli._main import COMMANDS, cli
from rtbuild.markers import PROJECT_NAME

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

HOOKS = sorted(
    name for name, obj in vars(hookspecs).items() if inspect.isfunction(obj) and hasattr(obj, f"{PROJECT_NAME}_spec")
)


def _sections(text: str) -> dict[str, str]:
    """``## heading`` -> body, for one markdown file."""
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _param_names(signature: str) -> list[str]:
    # Drop bracketed annotation parts (they may hold commas), then keep each name.
    flat = signature
    while re.search(r"\[[^\[\]]*\]", flat):
        flat = re.sub(r"\[[^\[\]]*\]", "", flat)
    return [part.split(":")[0].split("=")[0].strip() for part in flat.split(",") if part.strip()]


def _hook_headings() -> dict[str, list[str]]:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    found: dict[str, list[str]] = {}
    for match in re.finditer(r"^## `(\w+)\((.*?)\)(?: -> [^`]+)?`\s*$", text, flags=re.MULTILINE):
        found[match.group(1)] = _param_names(match.group(2))
    return found


def test_there_are_hooks() -> None:
    assert {"pre_build", "build", "image_exists", "post_build"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docs_section_headed_by_its_signature(hook: str) -> None:
    headings = _hook_headings()
    expected = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert hook in headings, f"docs/hooks.md needs a section '## `{hook}({', '.join(expected)})`'"
    assert headings[hook] == expected, f"docs/hooks.md heading for {hook} lists {headings[hook]}, spec has {expected}"


def test_every_documented_hook_exists() -> None:
    assert sorted(set(_hook_headings()) - set(HOOKS)) == []


def _test_sources() -> str:
    tests = REPO / "tests"
    return "\n".join(
        path.read_text(encoding="utf-8") for path in sorted(tests.rglob("*.py")) if path.name != "test_docs.py"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook: str) -> None:
    # A hookimpl of this hook somewhere in the tests (decorated functions and methods,
    # also inside plugin sources written to fake distributions).
    pattern = re.compile(rf"hookimpl[^\n]*\n(?:[ \t]*@[^\n]*\n)*[ \t]*def {hook}\(")
    assert pattern.search(_test_sources()), f"no test implements the {hook!r} hook"


# --- CLI -----------------------------------------------------------------------------------


def _cli_sections() -> dict[str, str]:
    return _sections((DOCS / "cli.md").read_text(encoding="utf-8"))


def _options(command: click.Command) -> list[str]:
    names: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            names += [opt for opt in [*param.opts, *param.secondary_opts] if opt.startswith("--")]
    return names


def _command(name: str) -> click.Command | None:
    module = COMMANDS[name].split(":")[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None  # announced in COMMANDS but not written yet
        raise
    return cli.get_command(click.Context(cli), name)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_command_is_documented_with_every_option(name: str) -> None:
    sections = _cli_sections()
    heading = f"`rtbuild {name}`"
    assert heading in sections, f"docs/cli.md needs a section '## {heading}'"
    command = _command(name)
    if command is None:
        return
    body = sections[heading]
    missing = [opt for opt in _options(command) if f"`{opt}" not in body and f"{opt} " not in body]
    assert missing == [], f"docs/cli.md section {heading} does not mention {missing}"


def test_global_options_are_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert [opt for opt in _options(cli) if f"`{opt}" not in text] == []


def test_exit_codes_are_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in text


# --- configuration -------------------------------------------------------------------------


def _config_keys() -> list[str]:
    keys = [key for key in config_module._TOP]
    for section, subkeys in config_module._SECTIONS.items():
        keys += [f"{section}.{sub}" for sub in subkeys]
    return keys


@pytest.mark.parametrize("key", _config_keys())
def test_config_key_is_documented(key: str) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert f"`{key}`" in text, f"docs/configuration.md does not document the key `{key}`"


@pytest.mark.parametrize("var", [*config_module.ENV_VARS, "RTBUILD_CONFIG"])
def test_env_var_is_documented(var: str) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert f"`{var}`" in text, f"docs/configuration.md does not document {var}"


# --- site ----------------------------------------------------------------------------------


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def test_mkdocs_nav_lists_every_page_and_only_existing_ones() -> None:
    site = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = _nav_pages(site["nav"])
    assert [page for page in pages if not (DOCS / page).is_file()] == []
    on_disk = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    assert sorted(set(on_disk) - set(pages)) == [], "add these pages to mkdocs.yml nav"
    for required in ("index.md", "hooks.md", "writing-a-builder.md", "writing-a-plugin.md", "cli.md"):
        assert required in pages


def test_internal_links_resolve() -> None:
    broken = []
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not (page.parent / target).resolve().is_file():
                broken.append(f"{page.relative_to(DOCS)} -> {target}")
    assert broken == []


def test_readme_quick_start() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(make \w+)\s*$", quick, flags=re.MULTILINE)
    assert commands == ["make demo", "make test"]


def test_site_builds_strictly(tmp_path: Path) -> None:
    # --strict turns every mkdocs warning (broken link, page missing from nav) into a failure.
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "hooks" / "index.html").is_file()


PUBLIC_MODULES = ["rtbuild", "rtbuild.errors", "rtbuild.context", "rtbuild.oci", "rtbuild.enginekit", "rtbuild.runtime",
                  "rtbuild.testing"]  # fmt: skip


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_is_documented(module: str) -> None:
    # A third-party backend is written against the docs: a public name they never mention
    # (34 of them were, in rtbuild.enginekit, rtbuild.context and rtbuild.oci) is no contract.
    text = "\n".join(page.read_text(encoding="utf-8") for page in DOCS.rglob("*.md"))
    names = importlib.import_module(module).__all__
    assert [name for name in names if not re.search(rf"`[^`]*\b{re.escape(name)}\b[^`]*`", text)] == []


#: RTBUILD_* names in the code that no user sets: the Kubernetes build pod's own environment
#: (written into the Job by rtbuild) and a build arg of the runtime composition.
INTERNAL_NAMES = {"RTBUILD_TAGS", "RTBUILD_BUILD_ARGS", "RTBUILD_INSECURE_REGISTRY", "RTBUILD_LOCK_IMAGE"}


def test_every_environment_variable_in_the_code_is_documented() -> None:
    # The core, the backends, the contrib plugins and what `rtbuild new` generates
    # (RTBUILD_CONTRACT_BASE, read by the generated contract test, was in no page).
    sources = [
        *REPO.glob("core/src/**/*.py"),
        *REPO.glob("builders/*/src/**/*.py"),
        *REPO.glob("contrib/*/src/**/*.py"),
    ]
    found = {name for path in sources for name in re.findall(r"""["'](RTBUILD_[A-Z0-9_]+)["']""", path.read_text())}
    assert {"RTBUILD_BUILDER", "RTBUILD_METRICS_FILE", "RTBUILD_CONTRACT_BASE"} <= found  # the search still works
    text = "\n".join(page.read_text(encoding="utf-8") for page in DOCS.rglob("*.md"))
    undocumented = [name for name in found - INTERNAL_NAMES if not re.search(rf"\b{name}\b", text)]
    assert sorted(undocumented) == []
