"""The digests a :class:`rtbuild.BuildSession` keeps across builds, each valid while its
context's :class:`~rtbuild.context._watch.ContextWatch` saw nothing (see that module for why
this is safe), and the bound on how many contexts a session keeps watched."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

from rtbuild.context._hub import WatchHub, fork_safe_lock
from rtbuild.context._links import linked_changed as _linked_changed
from rtbuild.context._links import read_through as _read_through
from rtbuild.context._snapshot import WalkState
from rtbuild.context._watch import ContextWatch, root_identity, try_watch

#: Contexts a session keeps watched (the most recently used) when the limit is unknown; else
#: a quarter, 8 to 1024, of the process's open-files limit (each watch holds a descriptor on
#: the mount table; the session's watches share one inotify instance).
MAX_CONTEXTS = 256
#: Contexts a session remembers at all (watched or why not), the most recently used.
MAX_ROOTS = 4096


@functools.cache
def max_contexts() -> int:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return MAX_CONTEXTS if soft == resource.RLIM_INFINITY else max(8, min(1024, soft // 4))


class ResidentDigests:
    """Context digests kept across builds, valid while their context's watch saw nothing.

    Installed by :class:`rtbuild.BuildSession` around each build (see :func:`resident`);
    :func:`rtbuild.context.context_digest` asks it first.
    """

    def __init__(self) -> None:
        self._watches: dict[str, ContextWatch | None] = {}
        self._why_not: dict[str, str] = {}
        #: Digests by context and the watch (and its generation) they hold for.
        self._known: dict[tuple[str, str, str, str, str], tuple[ContextWatch, int, Any]] = {}
        self._lock = fork_safe_lock(self)  # a forked child gets a free one
        #: The inotify instance all of this session's watches share (opened with the first).
        self._hub: WatchHub | None = None
        self._closed = False
        self._pid = os.getpid()
        self.hits = 0
        self.walks = 0
        #: Label checks after a build that the watch answered without a walk.
        self.vouched = 0

    def why_not_watched(self, root: str) -> str | None:
        watch = self._watches.get(os.path.abspath(root))  # broken since its last question?
        return watch.broken if watch is not None and watch.broken else self._why_not.get(os.path.abspath(root))

    def digest(self, root: str, dockerfile: str, compute: Callable[[], Any], variant: str = "") -> Any:
        """The memoised digest of ``root`` (+ ``dockerfile``), or ``compute()``'s after a walk.

        ``variant`` tells apart digests of one tree that ``compute`` makes differently (the
        ``.dockerignore`` dialect of the client that will send it)."""
        root = os.path.abspath(root)
        dockerfile = os.path.abspath(dockerfile)
        watch = self._watch(root)
        read_through = _read_through(root, dockerfile)
        if watch is None or read_through is None:
            self.walks += 1
            return compute()
        # Keyed by where the Dockerfile and .dockerignore lead too: a link on the way that
        # lies outside the context can be re-pointed without an event in it.
        key = (root, dockerfile, *read_through, variant)
        known = self._known.get(key)
        if known is not None and known[0] is watch and known[1] == watch.generation and not _linked_changed(known[2]):
            self.hits += 1
            return known[2]
        # Settle the watched set first: no event between two drains around a rewatch
        # means every directory that exists now is watched as of ``generation``.
        generation = None
        for _ in range(3):
            before = watch.generation
            watch.rewatch()
            if watch.generation == before and not watch.broken:
                generation = before
                break
        self.walks += 1
        result = compute()
        if generation is not None and _read_through(root, dockerfile) == read_through:
            with self._lock:  # _forget rebuilds the dict under it
                self._known[key] = (watch, generation, result)
            if isinstance(walk := getattr(result, "walk", None), WalkState):
                walk.vouch = self._vouch(watch, generation, root, dockerfile, read_through, result)
        return result

    def _vouch(
        self,
        watch: ContextWatch,
        generation: int,
        root: str,
        dockerfile: str,
        read_through: tuple[str, str],
        result: Any,
    ) -> Callable[[], bool]:
        """Whether nothing changed since ``generation`` (taken before the walk), by the
        same rules as a memoised digest: the label check after a build asks this before
        it lists the context again (``WalkState.changed``)."""

        def unchanged() -> bool:
            if watch.broken or watch.generation != generation or watch.identity != root_identity(root):
                return False
            if _read_through(root, dockerfile) != read_through or _linked_changed(result):
                return False
            self.vouched += 1
            return True

        return unchanged

    def _watch(self, root: str) -> ContextWatch | None:
        with self._lock:
            if self._closed:  # a call still running when the session closed: walk, watch nothing new
                return None
            if self._pid != os.getpid():  # a forked child: its parent's watches are not its own
                self._pid = os.getpid()
                self._forget(*self._watches)  # closes the child's copies of the descriptors
                self._close_hub()
            watch = self._watches.get(root)
            if watch is not None and watch.identity != root_identity(root):
                # The path names another directory now (a symlink re-pointed, it or a parent
                # moved away and replaced): the old one's events say nothing about it.
                self._forget(root)
            if root in self._watches:
                self._watches[root] = self._watches.pop(root)  # the most recently used last
            else:
                self._make_room()
                watch, why = self._try_watch(root)
                self._watches[root] = watch
                if why:
                    self._why_not[root] = why
            watch = self._watches[root]
            if watch is not None and watch.broken:
                self._why_not[root] = watch.broken
                return None
            return watch

    def _try_watch(self, root: str) -> tuple[ContextWatch | None, str | None]:
        if self._hub is None:
            try:
                self._hub = WatchHub()
            except (ImportError, OSError) as exc:
                return None, f"inotify unavailable: {exc}"
        return try_watch(root, hub=self._hub)

    def _close_hub(self) -> None:
        if self._hub is not None:
            self._hub.close()  # after its watches; in a forked child, only the child's copy
            self._hub = None

    def _make_room(self) -> None:
        """Forget the least recently used contexts beyond the bounds (caller holds the lock)."""
        live = [root for root, watch in self._watches.items() if watch is not None]
        self._forget(*live[: max(0, len(live) + 1 - max_contexts())])
        self._forget(*list(self._watches)[: max(0, len(self._watches) + 1 - MAX_ROOTS)])

    def _forget(self, *roots: str) -> None:
        for root in roots:
            watch = self._watches.pop(root)
            if watch is not None:
                watch.close()  # a thread still holding it sees it broken: "changed", a walk
            self._why_not.pop(root, None)
        self._known = {key: value for key, value in self._known.items() if key[0] not in roots}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._forget(*self._watches)
            self._close_hub()


_current: contextvars.ContextVar[ResidentDigests | None] = contextvars.ContextVar("rtbuild_resident", default=None)


def current_resident() -> ResidentDigests | None:
    return _current.get()


@contextlib.contextmanager
def resident(digests: ResidentDigests) -> Iterator[ResidentDigests]:
    """Let :func:`rtbuild.context.context_digest` answer from ``digests`` inside the block."""
    token = _current.set(digests)
    try:
        yield digests
    finally:
        _current.reset(token)


__all__ = ["MAX_CONTEXTS", "MAX_ROOTS", "ResidentDigests", "current_resident", "max_contexts", "resident"]
