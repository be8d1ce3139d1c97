"""An OSV record's severity as one level: low < medium < high < critical (or unknown).

Sources, all read, the highest wins (docs/plugins/sbom.md has the table):

- ``severity[]`` entries of type ``CVSS_V2``/``CVSS_V3``/``CVSS_V4``: the vector's base score
  (computed with the ``cvss`` library) in the NVD bands: 0.1-3.9 low, 4.0-6.9 medium,
  7.0-8.9 high, 9.0-10.0 critical; type ``Ubuntu``: its word, mapped as below;
- ``database_specific.severity`` of the record, then ``ecosystem_specific.severity`` and
  ``database_specific.severity`` of the matched ``affected`` entry: words such as
  ``LOW``, ``MODERATE``/``MEDIUM``, ``HIGH``/``IMPORTANT``, ``CRITICAL``.

A record with none of these is ``unknown``; the policy ranks it as configured.
"""

from __future__ import annotations

from typing import Any

LEVELS = ("low", "medium", "high", "critical")
UNKNOWN = "unknown"
RANK = {level: index + 1 for index, level in enumerate(LEVELS)}

_WORDS = {
    "negligible": "low",
    "unimportant": "low",
    "low": "low",
    "moderate": "medium",
    "medium": "medium",
    "high": "high",
    "important": "high",
    "critical": "critical",
}


def level_of_score(score: float) -> str | None:
    """NVD's qualitative rating of a CVSS base score (0.0 is "none": no level)."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return None


def cvss_score(kind: str, vector: str) -> float | None:
    """The base score of a CVSS vector, ``None`` when the vector is not valid."""
    try:
        if kind == "CVSS_V4":
            from cvss import CVSS4

            return float(CVSS4(vector).base_score)
        if kind == "CVSS_V3":
            from cvss import CVSS3

            return float(CVSS3(vector).scores()[0])
        if kind == "CVSS_V2":
            from cvss import CVSS2

            return float(CVSS2(vector).scores()[0])
    except Exception:  # cvss raises its own error types for bad vectors; an unscored record stays unknown
        return None
    return None


def _word(value: Any) -> str | None:
    return _WORDS.get(value.strip().lower()) if isinstance(value, str) else None


def record_severity(record: dict[str, Any], entry: dict[str, Any] | None = None) -> tuple[str, float | None]:
    """(level, best CVSS score or ``None``) of an OSV record, for one matched ``affected`` entry."""
    levels: list[str] = []
    best: float | None = None
    for item in record.get("severity") or []:
        if not isinstance(item, dict):
            continue
        kind, raw = str(item.get("type", "")), item.get("score")
        if kind.startswith("CVSS_") and isinstance(raw, str):
            score = cvss_score(kind, raw)
            if score is not None:
                best = score if best is None else max(best, score)
                level = level_of_score(score)
                if level:
                    levels.append(level)
        elif (word := _word(raw)) is not None:
            levels.append(word)
    sources: list[Any] = [record.get("database_specific")]
    if entry is not None:
        sources += [entry.get("ecosystem_specific"), entry.get("database_specific")]
    for source in sources:
        if isinstance(source, dict) and (word := _word(source.get("severity"))) is not None:
            levels.append(word)
    if not levels:
        return UNKNOWN, best
    return max(levels, key=RANK.__getitem__), best


__all__ = ["LEVELS", "RANK", "UNKNOWN", "cvss_score", "level_of_score", "record_severity"]
