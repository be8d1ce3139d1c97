"""Step profiles in ``BuildResult.details["steps"]``: the cache-hit ratio and the slowest steps.

A step is a dict with ``name``, ``start``, ``end`` (epoch seconds), ``duration_s`` and
``cached``; backends may add ``status``, ``internal`` (not a Dockerfile instruction) and
``layer_bytes``. See docs/cli.md (``--profile``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_POSITION = re.compile(r"^\[([^\]]+)\] (.+)$")


def instruction_steps(steps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The steps that are Dockerfile instructions (not internal vertices)."""
    return [s for s in steps if not s.get("internal", False)]


def cache_hit_ratio(steps: Sequence[Mapping[str, Any]]) -> float | None:
    """Cached instruction steps over all instruction steps, ``FROM`` not counted."""
    counted = counted_steps(steps)
    if not counted:
        return None
    return round(sum(1 for s in counted if s.get("cached")) / len(counted), 3)


def counted_steps(steps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The instruction steps a cache hit counts for (``FROM`` is always "cached")."""
    counted = []
    for step in instruction_steps(steps):
        match = _POSITION.match(str(step.get("name", "")))
        instruction = match.group(2) if match else str(step.get("name", ""))
        if not instruction.upper().startswith("FROM "):
            counted.append(step)
    return counted


def slowest(steps: Sequence[Mapping[str, Any]], count: int = 5) -> list[Mapping[str, Any]]:
    """The ``count`` longest steps, longest first (internal vertices included: a slow
    context upload or export is worth seeing too)."""
    return sorted(steps, key=lambda s: -float(s.get("duration_s") or 0.0))[:count]


def render_profile(details: Mapping[str, Any], count: int = 5) -> str:
    """The text ``rtbuild build --profile`` prints to stderr after the build."""
    from rtbuild._observe.units import human_duration, human_size

    steps = details.get("steps")
    if not isinstance(steps, list) or not steps:
        return "profile: no step profile (the image was reused, or this builder records none)"
    lines = ["profile: slowest steps"]
    total = sum(float(s.get("duration_s") or 0.0) for s in steps) or 1.0
    for step in slowest(steps, count):
        duration = float(step.get("duration_s") or 0.0)
        mark = " (cached)" if step.get("cached") else ""
        size = f"  {human_size(step['layer_bytes'])}" if isinstance(step.get("layer_bytes"), int) else ""
        lines.append(f"  {human_duration(duration):>8}  {100 * duration / total:5.1f}%  {step.get('name')}{mark}{size}")
    ratio = cache_hit_ratio(steps)
    counted = len(counted_steps(steps))
    shown = "-" if ratio is None else f"{100 * ratio:.0f}%"
    lines.append(f"profile: cache hits {shown} of {counted} instruction steps (FROM not counted)")
    return "\n".join(lines)


__all__ = ["cache_hit_ratio", "counted_steps", "instruction_steps", "render_profile", "slowest"]
