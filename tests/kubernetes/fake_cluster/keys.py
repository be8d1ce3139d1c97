"""Request storage keys shared by api.py and podio.py (aiohttp >= 3.13 warns on plain strings)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

_Key: Any = getattr(web, "RequestKey", None)
RECORD: Any = _Key("record", object) if _Key else "record"  # the RequestRecord of this request
TARGET: Any = _Key("target", object) if _Key else "target"  # the parsed api.Target
