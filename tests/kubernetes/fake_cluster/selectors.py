"""Label and field selectors with the API server's syntax (labels: =, ==, !=, in, notin, exists,
!exists; fields: =, ==, != on dotted paths such as metadata.name or involvedObject.uid)."""

from __future__ import annotations

import re
from typing import Any

_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP = re.compile(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=()]+)\s*$")


class SelectorError(ValueError):
    pass


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


class LabelSelector:
    def __init__(self, text: str | None) -> None:
        self.text = text or ""
        self.requirements: list[tuple[str, str, set[str]]] = []
        for part in _split(self.text):
            if match := _SET.match(part):
                values = {value.strip() for value in match.group(3).split(",") if value.strip()}
                self.requirements.append((match.group(1), match.group(2), values))
            elif match := _CMP.match(part):
                op = "!=" if match.group(2) == "!=" else "="
                self.requirements.append((match.group(1), op, {match.group(3)}))
            elif match := _EXISTS.match(part):
                self.requirements.append((match.group(2), "!exists" if match.group(1) else "exists", set()))
            else:
                raise SelectorError(f"unable to parse requirement: {part!r}")

    @classmethod
    def from_match(cls, selector: dict[str, Any] | None) -> LabelSelector:
        """A LabelSelector object (matchLabels / matchExpressions) as a selector."""
        parts = [f"{k}={v}" for k, v in ((selector or {}).get("matchLabels") or {}).items()]
        for expr in (selector or {}).get("matchExpressions") or []:
            op, key, values = expr["operator"], expr["key"], expr.get("values") or []
            if op in ("In", "NotIn"):
                parts.append(f"{key} {op.lower()} ({','.join(values)})")
            else:
                parts.append(key if op == "Exists" else f"!{key}")
        return cls(",".join(parts))

    def matches(self, labels: dict[str, str]) -> bool:
        for key, op, values in self.requirements:
            present = key in labels
            value = labels.get(key)
            if op == "=" and value not in values:
                return False
            if op == "!=" and present and value in values:
                return False
            if op == "in" and value not in values:
                return False
            if op == "notin" and present and value in values:
                return False
            if op == "exists" and not present:
                return False
            if op == "!exists" and present:
                return False
        return True


def lookup(obj: Any, path: str) -> str:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    if obj is None:
        return ""
    if isinstance(obj, bool):
        return "true" if obj else "false"
    return str(obj)


class FieldSelector:
    def __init__(self, text: str | None) -> None:
        self.text = text or ""
        self.requirements: list[tuple[str, str, str]] = []
        for part in _split(self.text):
            match = _CMP.match(part)
            if not match:
                raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
            self.requirements.append((match.group(1), "!=" if match.group(2) == "!=" else "=", match.group(3)))

    def matches(self, obj: dict[str, Any]) -> bool:
        for path, op, value in self.requirements:
            actual = lookup(obj, path)
            if (op == "=") != (actual == value):
                return False
        return True
