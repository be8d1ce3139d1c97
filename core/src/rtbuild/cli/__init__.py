"""The ``rtbuild`` command line: the click group (``_main``) and its lazily loaded commands.

This module imports nothing but :mod:`sys`: the console script imports it before
:func:`run` starts, and a Ctrl-C that lands while Python imports the rest (click,
dataclasses, the group: the command's first ~50 ms) must end as quietly as one during a
build does, not as a ``KeyboardInterrupt`` traceback from the script's ``import`` line.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rtbuild.cli._main import cli, main


def __getattr__(name: str) -> object:
    if name in ("cli", "main"):  # imported on first use, see the module's docstring
        from rtbuild.cli import _main

        return getattr(_main, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run() -> None:
    """Console-script entry point: runs the command and exits with its code.

    An interrupt the command did not handle itself (one that arrives while the CLI is
    still being imported, or after the command returned) ends rtbuild as documented:
    ``rtbuild: interrupted`` on stderr (the JSON error too under ``--json``), exit 128 +
    the signal's number (130 for Ctrl-C), no traceback.
    """
    try:
        from rtbuild.cli._main import run as run_command

        run_command()
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", 2)  # _framework.interrupts.Terminated carries one
        name = "interrupted" if signum == 2 else "terminated"
        sys.stderr.write(f"\nrtbuild: {name}\n")
        if "--json" in sys.argv[1:]:
            import json  # imported here: only this rare path needs it

            document = {"error": "Interrupted", "message": f"rtbuild {name} (signal {signum})"}
            sys.stdout.write(json.dumps({**document, "exit_code": 128 + signum}, indent=2) + "\n")
        sys.exit(128 + signum)


__all__ = ["cli", "main", "run"]
