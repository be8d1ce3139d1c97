"""run_cli: the ``rtbuild`` command in-process, with its output captured."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class CliResult:
    """What :func:`run_cli` saw: exit code, stdout, stderr."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(args: list[str], env: Mapping[str, str | None] | None = None) -> CliResult:
    """Run ``rtbuild ARGS`` in this process (so a :class:`FakeSite` applies) and capture it.

    ``env`` sets (or, with ``None`` values, removes) environment variables for the run.
    """
    from rtbuild.cli._main import main

    saved = {key: os.environ.get(key) for key in (env or {})}
    out, err = io.StringIO(), io.StringIO()
    try:
        for key, value in (env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return CliResult(code, out.getvalue(), err.getvalue())


__all__ = ["CliResult", "run_cli"]
