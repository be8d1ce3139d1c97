"""A glob pattern as a Thompson NFA run through a lazily built, memoised DFA.

Matching costs time linear in the path (like Go's RE2, which Docker uses), however many
wildcards the pattern has; Python's backtracking ``re`` is used only where its worst
case is provably small (few unbounded tokens against a short path).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

# NFA token kinds
_LIT, _ONE, _CLASS, _STAR, _DOTSTAR, _DIRS = range(6)
#: Transition memo entries per pattern before it is dropped (bounds memory on hostile input).
_MEMO_LIMIT = 50_000
#: Worst-case backtracking steps (len(path) ** unbounded tokens) up to which ``re`` is used.
_RE_BUDGET = 20_000
_RE_PIECES = {_ONE: "[^/]", _STAR: "[^/]*", _DOTSTAR: ".*", _DIRS: "(?:.*/)?"}


@dataclass
class Automaton:
    """Thompson NFA over the tokens, run as a lazily built, memoised DFA."""

    tokens: list[tuple[int, object]]
    sets: list[frozenset[int]] = field(default_factory=list)
    ids: dict[frozenset[int], int] = field(default_factory=dict)
    accept: list[bool] = field(default_factory=list)
    memo: dict[tuple[int, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = self._id(self._closure({0}))
        # Python's re backtracks: a path of length n costs up to n**k steps with k unbounded
        # tokens. Below _RE_BUDGET that is cheaper than stepping the DFA in Python.
        self.unbounded = sum(kind in (_STAR, _DOTSTAR, _DIRS) for kind, _ in self.tokens)
        parts = []
        for kind, arg in self.tokens:
            if kind == _LIT:
                parts.append(re.escape(str(arg)))
            elif kind == _CLASS:
                assert isinstance(arg, re.Pattern)
                parts.append(arg.pattern)
            else:
                parts.append(_RE_PIECES[kind])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.regex = re.compile("".join(parts), re.DOTALL)

    def _closure(self, states: set[int]) -> frozenset[int]:
        # State p >= 0: about to match token p; -(p+1): inside the (.*/)? of token p.
        m = len(self.tokens)
        todo = list(states)
        seen = set(states)
        while todo:
            p = todo.pop()
            if 0 <= p < m and self.tokens[p][0] in (_STAR, _DOTSTAR, _DIRS) and p + 1 not in seen:
                seen.add(p + 1)
                todo.append(p + 1)
        return frozenset(seen)

    def _id(self, states: frozenset[int]) -> int:
        known = self.ids.get(states)
        if known is None:
            known = self.ids[states] = len(self.sets)
            self.sets.append(states)
            self.accept.append(len(self.tokens) in states)
        return known

    def _step(self, state: int, ch: str) -> int:
        tokens, m = self.tokens, len(self.tokens)
        out: set[int] = set()
        for p in self.sets[state]:
            if p < 0:
                q = -p - 1
                out.add(p)
                if ch == "/":
                    out.add(q + 1)
                continue
            if p == m:
                continue
            kind, arg = tokens[p]
            if kind == _LIT:
                if ch == arg:
                    out.add(p + 1)
            elif kind == _ONE:
                if ch != "/":
                    out.add(p + 1)
            elif kind == _CLASS:
                assert isinstance(arg, re.Pattern)
                if arg.fullmatch(ch):
                    out.add(p + 1)
            elif kind == _STAR:
                if ch != "/":
                    out.add(p)
            elif kind == _DOTSTAR:
                out.add(p)
            else:  # _DIRS: (.*/)? -- any run of characters ending in "/"
                out.add(-p - 1)
                if ch == "/":
                    out.add(p + 1)
        return self._id(self._closure(out))

    def match(self, path: str) -> bool:
        if len(path) ** self.unbounded <= _RE_BUDGET:
            return self.regex.fullmatch(path) is not None
        memo = self.memo
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        state = self.start
        for ch in path:
            nxt = memo.get((state, ch))
            if nxt is None:
                nxt = memo[(state, ch)] = self._step(state, ch)
            if not self.sets[nxt]:
                return False
            state = nxt
        return self.accept[state]

    def match_prefix(self, path: str) -> bool:
        """Whether some leading run of whole components of ``path`` matches (one DFA pass)."""
        memo = self.memo
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        state = self.start
        for ch in path:
            if ch == "/" and self.accept[state]:
                return True
            nxt = memo.get((state, ch))
            if nxt is None:
                nxt = memo[(state, ch)] = self._step(state, ch)
            if not self.sets[nxt]:
                return False
            state = nxt
        return self.accept[state]


__all__ = ["Automaton"]
