"""The ``rtbuild`` command line: the click group (``_main``) and its lazily loaded commands."""

from __future__ import annotations

from rtbuild.cli._main import cli, main, run

__all__ = ["cli", "main", "run"]
