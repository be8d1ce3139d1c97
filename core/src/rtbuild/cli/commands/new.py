"""``rtbuild new builder NAME`` / ``rtbuild new plugin NAME``: a ready distribution.

Writes ``rtbuild-NAME/`` (pyproject with the entry point, a module, tests using the kit, a
README) that installs with ``pip install ./rtbuild-NAME`` and passes ``pytest rtbuild-NAME``.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

import click

from rtbuild.cli._main import echo_result, emit_json, json_option

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def _names(name: str) -> dict[str, str]:
    if not _NAME.match(name):
        raise click.BadParameter(
            f"{name!r}: use lowercase letters, digits and single hyphens, starting with a letter (e.g. acme2)",
            param_hint="NAME",
        )
    from rtbuild._version import __version__

    module = "rtbuild_" + name.replace("-", "_")
    major_minor = ".".join(__version__.split(".")[:2])
    return {
        "name": name,
        "dist": f"rtbuild-{name}",
        "module": module,
        "cls": "".join(part.capitalize() for part in name.split("-")) + "Builder",
        "rtbuild_version": major_minor,
    }


#: What a builder and a plugin distribution differ in: the entry point (a str.format
#: pattern over the names), the module file, the test file, and the ``_templates`` names
#: of the module, test and usage texts.
_KINDS: dict[str, tuple[str, str, str, str, str, str]] = {
    "builder": (
        "{module}.builder:{cls}",
        "builder.py",
        "tests/test_contract.py",
        "BUILDER_MODULE",
        "BUILDER_TEST",
        "BUILDER_USAGE",
    ),
    "plugin": ("{module}.plugin", "plugin.py", "tests/test_plugin.py", "PLUGIN_MODULE", "PLUGIN_TEST", "PLUGIN_USAGE"),
}


def _scaffold(kind: str, name: str, output: str, force: bool, as_json: bool) -> None:
    """Write rtbuild-NAME for ``kind`` ("builder" or "plugin"), see :data:`_KINDS`."""
    from rtbuild.cli.commands import _templates as t

    entry_point, module_file, test_file, module_text, test_text, usage = _KINDS[kind]
    values = _names(name)
    values.update(
        kind=kind,
        group=f"rtbuild.{kind}s",
        entry_point=entry_point.format(**values),
        description=f"The {name} {kind} for rtbuild",
        listing=f"{kind}s",
    )
    values["usage"] = Template(getattr(t, usage)).substitute(values)
    root = Path(output) / values["dist"]
    files = {
        "pyproject.toml": t.COMMON_PYPROJECT,
        f"src/{values['module']}/__init__.py": f'"""The $name {kind} for rtbuild."""\n',
        f"src/{values['module']}/py.typed": "",
        f"src/{values['module']}/{module_file}": getattr(t, module_text),
        test_file: getattr(t, test_text),
        "README.md": t.README,
    }
    if root.exists() and not force:
        raise click.UsageError(f"{root} already exists (pass --force to write into it)")
    for relative, template in files.items():
        target = root / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(Template(template).substitute(values), encoding="utf-8")
        except OSError as exc:
            from rtbuild.errors import ConfigError

            raise ConfigError(
                f"cannot write {target}: {exc.strerror or exc}",
                step=f"write the new {kind}",
                hint="pass -o DIR with a directory you can write to",
            ) from exc
    if as_json:
        emit_json({"path": str(root), "distribution": values["dist"], "kind": kind, "files": sorted(files)})
    else:
        echo_result(str(root))


@click.group()
def new() -> None:
    """Write a new builder or plugin distribution, ready to install and test."""


_OUTPUT = click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Directory to create rtbuild-NAME in.",
)
_FORCE = click.option("--force", is_flag=True, help="Write into an existing rtbuild-NAME directory.")


@new.command("builder")
@click.argument("name")
@_OUTPUT
@_FORCE
@json_option
def new_builder(name: str, output: str, force: bool, as_json: bool) -> None:
    """Write rtbuild-NAME: a builder (entry point rtbuild.builders NAME) and its contract tests."""
    _scaffold("builder", name, output, force, as_json)


@new.command("plugin")
@click.argument("name")
@_OUTPUT
@_FORCE
@json_option
def new_plugin(name: str, output: str, force: bool, as_json: bool) -> None:
    """Write rtbuild-NAME: a plugin (entry point rtbuild.plugins NAME) and its tests."""
    _scaffold("plugin", name, output, force, as_json)
