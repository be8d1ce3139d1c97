"""``[plugins.sbom]``: every key, its type and default (documented in docs/plugins/sbom.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rtbuild

from .severity import LEVELS

FAIL_ON = (*LEVELS, "never")
KEYS = ("enabled", "dir", "osv_db", "fail_on", "unknown_severity", "ignore", "engine")


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/rtbuild/sbom``: beside the metrics plugin's ``metrics.jsonl``."""
    return rtbuild.state_dir("sbom", env=env)


@dataclass(frozen=True)
class Settings:
    enabled: bool = False
    dir: Path = field(default_factory=default_dir)
    osv_db: Path | None = None
    fail_on: str = "high"
    unknown_severity: str = "medium"
    ignore: frozenset[str] = frozenset()
    engine: str | None = None

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Settings:
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise _error(f"unknown key(s) {', '.join(unknown)}", f"known keys: {', '.join(KEYS)}")
        enabled = table.get("enabled", False)
        if not isinstance(enabled, bool):
            raise _error("enabled must be true or false")
        strings = {key: table.get(key) for key in ("dir", "osv_db", "fail_on", "unknown_severity", "engine")}
        for key, value in strings.items():
            if value is not None and not isinstance(value, str):
                raise _error(f"{key} must be a string")
        fail_on = str(table.get("fail_on", "high")).lower()
        if fail_on not in FAIL_ON:
            raise _error(f"fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        unknown_severity = str(table.get("unknown_severity", "medium")).lower()
        if unknown_severity not in LEVELS:
            raise _error(f"unknown_severity must be one of {', '.join(LEVELS)}, not {unknown_severity!r}")
        ignore = table.get("ignore", [])
        if not isinstance(ignore, list) or not all(isinstance(item, str) for item in ignore):
            raise _error("ignore must be a list of OSV ids or aliases (strings)")
        raw_dir, raw_db = strings["dir"], strings["osv_db"]
        return cls(
            enabled=enabled,
            dir=Path(os.path.expanduser(raw_dir)) if raw_dir else default_dir(),
            osv_db=Path(os.path.expanduser(raw_db)) if raw_db else None,
            fail_on=fail_on,
            unknown_severity=unknown_severity,
            ignore=frozenset(ignore),
            engine=strings["engine"] or None,
        )

    @classmethod
    def from_config(cls, config: rtbuild.Config) -> Settings:
        return cls.from_table(config_table(config))


def config_table(config: rtbuild.Config) -> dict[str, Any]:
    """``[plugins.sbom]``, its relative ``dir`` and ``osv_db`` made relative to the
    configuration file's directory: the same file means the same paths from any directory."""
    table = dict(config.plugin_config("sbom"))
    if config.source:
        base = os.path.dirname(os.path.abspath(config.source))
        for key in ("dir", "osv_db"):
            value = table.get(key)
            if isinstance(value, str) and value and not value.startswith("~") and not os.path.isabs(value):
                table[key] = os.path.join(base, value)
    return table


def _error(message: str, hint: str = "see docs/plugins/sbom.md") -> rtbuild.ConfigError:
    return rtbuild.ConfigError(f"[plugins.sbom] {message}", step="read configuration", hint=hint)


__all__ = ["FAIL_ON", "KEYS", "Settings", "config_table", "default_dir"]
