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


def _write(root: Path, files: dict[str, str], values: dict[str, str], force: bool, as_json: bool) -> None:
    if root.exists() and not force:
        raise click.UsageError(f"{root} already exists (pass --force to write into it)")
    for relative, template in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(template).substitute(values), encoding="utf-8")
    if as_json:
        emit_json({"path": str(root), "distribution": values["dist"], "kind": values["kind"], "files": sorted(files)})
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
    from rtbuild.cli.commands import _templates as t

    values = _names(name)
    values.update(
        kind="builder",
        group="rtbuild.builders",
        entry_point=f"{values['module']}.builder:{values['cls']}",
        description=f"The {name} builder for rtbuild",
        listing="builders",
    )
    values["usage"] = Template(t.BUILDER_USAGE).substitute(values)
    root = Path(output) / values["dist"]
    files = {
        "pyproject.toml": t.COMMON_PYPROJECT,
        f"src/{values['module']}/__init__.py": '"""The $name builder for rtbuild."""\n',
        f"src/{values['module']}/py.typed": "",
        f"src/{values['module']}/builder.py": t.BUILDER_MODULE,
        "tests/test_contract.py": t.BUILDER_TEST,
        "README.md": t.README,
    }
    _write(root, files, values, force, as_json)


@new.command("plugin")
@click.argument("name")
@_OUTPUT
@_FORCE
@json_option
def new_plugin(name: str, output: str, force: bool, as_json: bool) -> None:
    """Write rtbuild-NAME: a plugin (entry point rtbuild.plugins NAME) and its tests."""
    from rtbuild.cli.commands import _templates as t

    values = _names(name)
    values.update(
        kind="plugin",
        group="rtbuild.plugins",
        entry_point=f"{values['module']}.plugin",
        description=f"The {name} plugin for rtbuild",
        listing="plugins",
    )
    values["usage"] = Template(t.PLUGIN_USAGE).substitute(values)
    root = Path(output) / values["dist"]
    files = {
        "pyproject.toml": t.COMMON_PYPROJECT,
        f"src/{values['module']}/__init__.py": '"""The $name plugin for rtbuild."""\n',
        f"src/{values['module']}/py.typed": "",
        f"src/{values['module']}/plugin.py": t.PLUGIN_MODULE,
        "tests/test_plugin.py": t.PLUGIN_TEST,
        "README.md": t.README,
    }
    _write(root, files, values, force, as_json)
