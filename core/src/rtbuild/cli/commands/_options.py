"""Options and parsing shared by several subcommands."""

from __future__ import annotations

from collections.abc import Iterable

import click


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``K=V`` strings to a dict; a missing ``=`` is a usage error naming the option."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key] = val
    return pairs


def progress_mode(as_json: bool, quiet: bool = False) -> str:
    if as_json:
        return "json"
    return "quiet" if quiet else "auto"
