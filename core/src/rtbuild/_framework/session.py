"""``BuildSession``: the in-process API an agent platform keeps for its whole lifetime.

One session keeps what every call would otherwise redo: the configuration, the plugin
manager (discovery, plugin imports), one builder per name (its engine client and probes)
and, per build context, an inotify watch (:mod:`rtbuild.context._watch`). A no-op build
of an unchanged context then answers from the watch without walking the context; any
change the watch reports (or a watch that overflowed, broke, or cannot be trusted on
that filesystem) falls back to the stat-cached walk, so a skipped build still holds
exactly the content asked for.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rtbuild._framework.config import Config, load_config
from rtbuild.context._resident import ResidentDigests, resident

if TYPE_CHECKING:
    from rtbuild._framework.plugins import RtbuildPluginManager
    from rtbuild.builder import BuildRequest, BuildResult, RuntimeBuilder

_T = TypeVar("_T")


class BuildSession:
    """Builds through one long-lived configuration, plugin manager and set of builders.

    Use it as a context manager (or call :meth:`close`): the watches hold inotify file
    descriptors. Thread-safe: concurrent builds share the session (the core's per-tag
    lock still makes one build per tag at a time).
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        pm: RtbuildPluginManager | None = None,
        builder: RuntimeBuilder | None = None,
        watch: bool = True,
    ) -> None:
        from rtbuild._framework.plugins import get_plugin_manager

        self.config = config or load_config()
        self.pm = pm or get_plugin_manager(self.config)
        self._builders: dict[str, RuntimeBuilder] = {}
        if builder is not None:
            self._builders[builder.name or self.config.builder] = builder
        self._lock = threading.Lock()
        #: The resident digests (``None`` with ``watch=False``: every no-op walks).
        self.digests: ResidentDigests | None = ResidentDigests() if watch else None
        self._closed = False
        #: The cancel scope of each call running now (a caller's ``cancel`` event, or one
        #: of the call's own) and how many calls use it: :meth:`close` stops them all,
        #: :meth:`cancel` the calls given one event.
        self._running: dict[threading.Event, int] = {}

    def builder(self, name: str | None = None) -> RuntimeBuilder:
        """The session's builder ``name`` (default: the configured one), created once; a
        closed session makes none (``ConfigError``)."""
        self._check_open()
        name = name or self.config.builder
        with self._lock:
            if name not in self._builders:
                self._builders[name] = self.pm.create_builder(name, self.config)
            return self._builders[name]

    def _resident(self) -> Any:
        return resident(self.digests) if self.digests is not None else contextlib.nullcontext()

    def build(self, request: BuildRequest, *, cancel: threading.Event | None = None) -> BuildResult:
        """:func:`rtbuild.run_build` with the session's config, plugins, builder and watches;
        :meth:`cancel` with the same ``cancel`` event stops this call alone."""
        from rtbuild._framework.pipeline import run_build

        self._check_open()
        builder = self.builder(request.builder)
        with self._resident():
            return self._call(lambda: run_build(request, config=self.config, pm=self.pm, builder=builder), cancel)

    def exists(
        self,
        image_name: str,
        pull_from_repo: bool = True,
        *,
        builder: str | None = None,
        cancel: threading.Event | None = None,
    ) -> bool:
        """:func:`rtbuild.check_image` through the session's plugins and builder."""
        from rtbuild._framework.pipeline import check_image

        self._check_open()
        chosen = self.builder(builder)
        pm = self.pm
        return self._call(
            lambda: check_image(image_name, pull_from_repo, config=self.config, pm=pm, builder=chosen), cancel
        )

    def get_runtime_image(
        self,
        base_image: str | None = None,
        plugins: Sequence[str] | None = None,
        *,
        cancel: threading.Event | None = None,
        **kwargs: Any,
    ) -> str:
        """:func:`rtbuild.get_runtime_image` with the session's config, plugins and builder."""
        from rtbuild.runtime import get_runtime_image

        self._check_open()
        kwargs.setdefault("builder", self.builder())
        with self._resident():
            return self._call(lambda: get_runtime_image(self.config, base_image, plugins, pm=self.pm, **kwargs), cancel)

    def cancel(self, event: threading.Event) -> None:
        """Stop the calls given ``cancel=event`` (from any thread), as :meth:`close` stops
        every call, and set ``event``: a call given it later is refused at once. The other
        calls and the session go on. Returns without waiting for the stopped calls."""
        from rtbuild._framework.interrupts import cancel_all

        event.set()
        cancel_all(event)

    def stats(self) -> dict[str, Any]:
        """How the session answered so far: resident hits, walks, and the label checks after
        a build that its watches answered without a walk."""
        digests = self.digests
        return {
            "resident_hits": digests.hits if digests else 0,
            "walks": digests.walks if digests else 0,
            "label_checks_watched": digests.vouched if digests else 0,
        }

    def _call(self, call: Callable[[], _T], cancel: threading.Event | None = None) -> _T:
        """Run ``call`` in a cancel scope of its own (``cancel``, else a new event):
        :meth:`close` or :meth:`cancel` stops it (a lock wait gives up, no engine build
        starts, a running one is stopped), and it then raises an ``AgentRuntimeBuildError``
        saying which of the two stopped it, never a ``KeyboardInterrupt``."""
        from rtbuild._framework.interrupts import Cancelled, cancel_scope

        scope = cancel if cancel is not None else threading.Event()
        with self._lock:
            self._check_open()  # closed since the caller's check: it starts nothing
            self._running[scope] = self._running.get(scope, 0) + 1
        try:
            if scope.is_set():  # cancelled before it began: nothing starts
                raise Cancelled("cancelled")
            with cancel_scope(scope):
                return call()
        except Exception as exc:
            if not scope.is_set():
                raise
            raise self._stopped(exc) from exc
        except Cancelled as exc:  # only our own scope's: the scope above is the innermost
            raise self._stopped(exc) from exc
        finally:
            with self._lock:
                left = self._running.pop(scope) - 1
                if left:
                    self._running[scope] = left

    def _stopped(self, exc: BaseException) -> Exception:
        from rtbuild.errors import BuildFailedError, ConfigError

        step = getattr(exc, "step", None) or "build session"
        if self._closed:
            return ConfigError(
                "this BuildSession was closed while the call ran: it was stopped (no engine build starts"
                " after close, a running one is stopped and tags nothing)",
                step=step,
                hint=(
                    "close the session only once its calls returned, or open a new rtbuild.BuildSession() and ask again"
                ),
            )
        return BuildFailedError(
            "this call was cancelled (BuildSession.cancel): it was stopped (no engine build starts after the"
            " cancel, a running one is stopped and tags nothing)",
            step=step,
            hint="ask again with a new threading.Event (one that was cancelled stops every call given it)",
        )

    def _check_open(self) -> None:
        if self._closed:
            from rtbuild.errors import ConfigError

            raise ConfigError(
                "this BuildSession is closed", step="build session", hint="open a new rtbuild.BuildSession()"
            )

    def close(self) -> None:
        """Stop every watch and every call still running (from any thread); the session
        cannot build afterwards. Returns without waiting for the stopped calls to return."""
        from rtbuild._framework.interrupts import cancel_all

        with self._lock:
            self._closed = True
            scopes = list(self._running)
        for scope in scopes:
            scope.set()
        for scope in scopes:
            cancel_all(scope)
        if self.digests is not None:
            self.digests.close()

    def __enter__(self) -> BuildSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["BuildSession"]
