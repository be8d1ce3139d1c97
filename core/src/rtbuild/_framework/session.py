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
        #: Set by :meth:`close`: the calls still running are stopped (their cancel scope).
        self._cancel = threading.Event()

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

    def build(self, request: BuildRequest) -> BuildResult:
        """:func:`rtbuild.run_build` with the session's config, plugins, builder and watches."""
        from rtbuild._framework.pipeline import run_build

        self._check_open()
        builder = self.builder(request.builder)
        with self._resident():
            return self._call(lambda: run_build(request, config=self.config, pm=self.pm, builder=builder))

    def exists(self, image_name: str, pull_from_repo: bool = True, *, builder: str | None = None) -> bool:
        """:func:`rtbuild.check_image` through the session's plugins and builder."""
        from rtbuild._framework.pipeline import check_image

        self._check_open()
        chosen = self.builder(builder)
        pm = self.pm
        return self._call(lambda: check_image(image_name, pull_from_repo, config=self.config, pm=pm, builder=chosen))

    def get_runtime_image(
        self, base_image: str | None = None, plugins: Sequence[str] | None = None, **kwargs: Any
    ) -> str:
        """:func:`rtbuild.get_runtime_image` with the session's config, plugins and builder."""
        from rtbuild.runtime import get_runtime_image

        self._check_open()
        kwargs.setdefault("builder", self.builder())
        with self._resident():
            return self._call(lambda: get_runtime_image(self.config, base_image, plugins, pm=self.pm, **kwargs))

    def stats(self) -> dict[str, Any]:
        """How the session answered so far: resident hits, walks, and the label checks after
        a build that its watches answered without a walk."""
        digests = self.digests
        return {
            "resident_hits": digests.hits if digests else 0,
            "walks": digests.walks if digests else 0,
            "label_checks_watched": digests.vouched if digests else 0,
        }

    def _call(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` in the session's cancel scope: :meth:`close` stops it (a lock wait
        gives up, no engine build starts, a running one is stopped), and it then raises
        the ``ConfigError`` a closed session refuses with, never a ``KeyboardInterrupt``."""
        from rtbuild._framework.interrupts import Cancelled, cancel_scope

        try:
            with cancel_scope(self._cancel):
                return call()
        except Exception as exc:
            if not self._cancel.is_set():
                raise
            raise self._stopped(exc) from exc
        except Cancelled as exc:  # only our own scope's: the scope above is the innermost
            raise self._stopped(exc) from exc

    def _stopped(self, exc: BaseException) -> Exception:
        from rtbuild.errors import ConfigError

        return ConfigError(
            "this BuildSession was closed while the call ran: it was stopped (no engine build starts"
            " after close, a running one is stopped and tags nothing)",
            step=getattr(exc, "step", None) or "build session",
            hint="close the session only once its calls returned, or open a new rtbuild.BuildSession() and ask again",
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

        self._closed = True
        self._cancel.set()
        cancel_all(self._cancel)
        if self.digests is not None:
            self.digests.close()

    def __enter__(self) -> BuildSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["BuildSession"]
