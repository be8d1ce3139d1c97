"""The core's own mask over everything a build reports: any builder's, any plugin's.

The Docker, Podman and Kubernetes builders mask secret values themselves, but a builder
written from ``rtbuild new builder`` (or by hand) streams its engine's output as it comes:
a ``RUN`` that prints a secret-looking build arg's value put it in the progress lines, the
``--json`` events, the error's log tail and ``--dry-run``'s plan. While a request runs,
:func:`masked_output` puts a masking reporter in front of the current one and masks the
error that leaves it, with :class:`rtbuild.enginekit.Redactor` (the values of build args
with secret-looking names, URL passwords, ``--secret`` contents); a request with none of
those costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rtbuild._framework.progress import Reporter, _current, get_reporter
from rtbuild.errors import AgentRuntimeBuildError

if TYPE_CHECKING:
    from rtbuild.builder import BuildRequest
    from rtbuild.enginekit._redact import Redactor


class MaskingReporter(Reporter):
    """Passes lines and events on to ``inner`` with secret values shown as ``***``."""

    def __init__(self, inner: Reporter, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor

    def line(self, text: str, *, source: str = "build") -> None:
        self.inner.line(self.redactor(text), source=source)

    def event(self, kind: str, **fields: Any) -> None:
        self.inner.event(kind, **self.redactor.mask(fields))

    def close(self) -> None:
        """The inner reporter belongs to whoever installed it: left open."""


def request_redactor(request: BuildRequest) -> Redactor:
    """What the request holds that must not be shown (empty when nothing). Fields a hook left
    of the wrong type give what the others give: the error about them must not be replaced."""
    from rtbuild.builder import BuildSecret
    from rtbuild.enginekit._redact import Redactor, secrets_in_args
    from rtbuild.enginekit._skip import build_args_in

    values: list[bytes] = []
    secrets = request.secrets if isinstance(request.secrets, list) else []
    for secret in secrets:
        if isinstance(secret, BuildSecret):
            with contextlib.suppress(AgentRuntimeBuildError, OSError):
                values.append(secret.value())  # a missing one is the pipeline's to report
    build_args: dict[str, str] = {}
    if isinstance(request.build_args, dict):
        build_args.update((k, v) for k, v in request.build_args.items() if isinstance(k, str) and isinstance(v, str))
    extra = request.extra_build_args
    if isinstance(extra, list) and all(isinstance(arg, str) for arg in extra):
        values += secrets_in_args(extra)
        build_args.update(build_args_in(extra))
    return Redactor.for_build(build_args, values)


def mask_error(exc: BaseException, redactor: Redactor) -> None:
    """Mask ``exc`` in place: its message, args, step, log tail, hint and result, and every
    exception chained to it (``__cause__``, ``__context__``, an exception group's members),
    which ``--debug``'s traceback, ``traceback.format_exception`` and ``repr`` print."""
    if not redactor:
        return
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        _mask_one(current, redactor)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += list(getattr(current, "exceptions", None) or ()) if isinstance(current, BaseExceptionGroup) else []


#: Attributes that Python's own exceptions show from outside ``args`` (``OSError``'s path,
#: ``CalledProcessError``'s command and output live in ``__dict__``).
_SHOWN_SLOTS = ("filename", "filename2", "strerror")


def _mask_one(exc: BaseException, redactor: Redactor) -> None:
    with contextlib.suppress(Exception):  # an exception type whose args cannot be set stays as it is
        exc.args = redactor.mask(exc.args)
    for name, value in list(getattr(exc, "__dict__", {}).items()):  # CalledProcessError's .cmd, .output ...
        # The log's path is where the user looks next: a short value that is also part of
        # a tag or a directory name must not make it unusable (rtbuild names it, not a secret).
        if isinstance(value, (str, bytes, list, tuple, dict)) and name != "log_path":
            with contextlib.suppress(Exception):
                setattr(exc, name, redactor.mask(value))
    if isinstance(exc, OSError):
        for name in _SHOWN_SLOTS:
            with contextlib.suppress(Exception):
                if isinstance(value := getattr(exc, name), (str, bytes)):
                    setattr(exc, name, redactor.mask(value))
    if isinstance(exc, AgentRuntimeBuildError):
        exc.message = redactor(exc.message)
        exc.step = redactor(exc.step) if exc.step else exc.step
        exc.hint = redactor(exc.hint) if exc.hint else exc.hint
        exc.log_tail = [redactor(line) for line in exc.log_tail]
        result = getattr(exc, "result", None)
        if isinstance(result, dict):
            exc.result = redactor.mask(result)  # type: ignore[attr-defined]


@contextlib.contextmanager
def errors_masked(request: BuildRequest) -> Iterator[None]:
    """Mask the error leaving the block (for what runs outside :func:`rtbuild.run_build`)."""
    try:
        yield
    except Exception as exc:
        mask_error(exc, request_redactor(request))
        raise


#: The masks of the requests running now, in any thread: a Python warning a builder or plugin
#: issues (``warnings.warn``) reaches the process-wide ``warnings.showwarning``, not a reporter.
_RUNNING: list[Redactor] = []
_RUNNING_LOCK = threading.Lock()
#: The ``warnings.showwarning`` that :func:`_show_masked` stands in front of while it is set.
_shown_by: Any = None
#: ``now``: this thread is inside :func:`_show_masked` (a hook installed after it, such as
#: ``logging.captureWarnings``, may call it back: it must not go round for ever).
_showing = threading.local()


def _show_masked(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """``warnings.showwarning`` while requests with secrets run, for library callers too (the
    CLI masks its own display): the warning is passed on with every running mask applied,
    to whatever showed warnings before (the default, ``logging.captureWarnings``, a test's
    recorder). It stays correct if left in place: with nothing running it masks nothing."""
    text = str(message)
    masked = mask_running(text)
    shown = masked if masked != text else message
    if getattr(_showing, "now", False):  # a chain that leads back here: show it as Python would
        with contextlib.suppress(OSError, ValueError):
            (file or sys.stderr).write(warnings.formatwarning(shown, category, filename, lineno, line))
        return
    _showing.now = True
    try:
        _shown_by(shown, category, filename, lineno, file, line)
    finally:
        _showing.now = False


def _mask_warnings() -> None:
    """Put :func:`_show_masked` in front of ``warnings.showwarning`` (under ``_RUNNING_LOCK``)."""
    global _shown_by
    if warnings.showwarning is not _show_masked:
        _shown_by = warnings.showwarning
        warnings.showwarning = _show_masked


def _unmask_warnings() -> None:
    """Undo :func:`_mask_warnings` once nothing runs, unless someone has replaced it since
    (a ``catch_warnings`` block restores it later; it then passes warnings on unchanged)."""
    if not _RUNNING and warnings.showwarning is _show_masked:
        warnings.showwarning = _shown_by


def mask_running(text: str) -> str:
    """``text`` with the secret values of every request running now masked (the CLI's
    ``warnings.showwarning``)."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for redactor in running:
        text = redactor(text)
    return text


@contextlib.contextmanager
def masked_output(request: BuildRequest) -> Iterator[Redactor]:
    """Mask what ``request``'s build reports (see the module doc). The error that leaves the
    request is masked once, by :func:`rtbuild.run_build` (:func:`mask_error`), which also
    covers the errors raised before this begins."""
    redactor = request_redactor(request)
    if not redactor:
        yield redactor
        return
    # The library's silent default shows nothing, and plugins read it to learn so (the
    # metrics plugin then issues a Python warning): it is not wrapped.
    silent = type(get_reporter()) is Reporter
    token = None if silent else _current.set(MaskingReporter(get_reporter(), redactor))
    with _RUNNING_LOCK:
        _RUNNING.append(redactor)
        _mask_warnings()
    try:
        yield redactor
    finally:
        if token is not None:
            _current.reset(token)
        with _RUNNING_LOCK:
            _RUNNING.remove(redactor)
            _unmask_warnings()


def _warn_unmaskable(request: BuildRequest) -> None:
    """Secrets too short to mask (``--secret`` contents, secret-looking build-arg values): a
    ``RUN`` that prints one shows it, so the user is told (ids and names, never values)."""
    from rtbuild.enginekit._redact import MIN_VALUE, secret_arg_names

    ids = []
    for secret in request.secrets:
        with contextlib.suppress(AgentRuntimeBuildError, OSError):
            if 0 < len(secret.value().strip()) < MIN_VALUE:
                ids.append(secret.id)
    names = [name for name in secret_arg_names(request.build_args) if 0 < len(request.build_args[name]) < MIN_VALUE]
    if ids or names:
        what = ", ".join([*(f"secret {i!r}" for i in ids), *(f"build arg {n}" for n in names)])
        get_reporter().event(
            "warning",
            secrets=ids,
            names=names,
            message=f"{what}: shorter than {MIN_VALUE} characters, so rtbuild cannot mask it in its output"
            " (masking every occurrence of so few characters would hide nothing): a step that prints it shows it",
        )


def warn_secrets_in_context(request: BuildRequest) -> None:
    """A ``--secret src=`` file that the context sends along (in it, and not excluded by the
    ignore file an engine reads: ``.dockerignore``, ``Dockerfile.dockerignore``, ``.containerignore``);
    and any secret too short to mask."""
    from rtbuild.context import dockerfile_arg, sent_with_context

    _warn_unmaskable(request)
    sources = {secret.src: secret.id for secret in request.secrets if secret.src}
    if not sources or not os.path.isdir(request.path):
        return
    for src in sent_with_context(request.path, list(sources), dockerfile_arg(request.structured_args())):
        get_reporter().event(
            "warning",
            secret=sources[src],
            message=f"secret {sources[src]!r}: its source {src} is in the build context and the ignore file"
            " the engine reads (.dockerignore, or Dockerfile.dockerignore / .containerignore where present)"
            " does not exclude it, so the engine receives it with the context and `COPY . …` puts it in the"
            " image; exclude it there or keep it outside the context",
        )


__all__ = [
    "MaskingReporter",
    "errors_masked",
    "mask_error",
    "mask_running",
    "masked_output",
    "request_redactor",
    "warn_secrets_in_context",
]
