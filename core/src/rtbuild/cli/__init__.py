"""The ``rtbuild`` command line: the click group (``_main``) and its lazily loaded commands.

This module imports nothing but :mod:`sys` (and :mod:`os`, loaded with Python): the
console script imports it before :func:`run` starts, and a Ctrl-C that lands while Python imports the rest (click,
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
    _open_standard_streams()
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


def _open_standard_streams() -> None:
    """A closed stdin, stdout or stderr (``2>&-``, a supervisor that closes them) is
    /dev/null: Python made ``sys.stderr`` None, so every build failed as an internal error
    it could not print (exit 1); and a file rtbuild opens (a lock, a cache) could take
    descriptor 2, which the engine's client inherits and would write its messages into."""
    import os

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            if os.open(os.devnull, os.O_RDWR) != fd:  # the lowest free descriptor: this one
                return
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - the same


__all__ = ["cli", "main", "run"]
