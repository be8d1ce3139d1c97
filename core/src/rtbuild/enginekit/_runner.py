"""Run one engine CLI build (docker, podman): stream its plain progress live, keep the
full log in a file. Step lines are recognised in both BuildKit's plain progress
(``#5 [2/3] RUN ...``) and Buildah's (``STEP 2/3: RUN ...``).

Nothing outlives rtbuild: the CLI runs in its own session (so the terminal's Ctrl-C does
not reach it before rtbuild decides) and every way out of :func:`run_build` -- Ctrl-C,
SIGTERM/SIGHUP (turned into exceptions by the CLI), any error -- stops its whole process
group and waits for it before returning, so the caller's build lock is released only
after the build stopped. If rtbuild itself dies (even by ``kill -9``), the kernel sends
the CLI SIGKILL (``PR_SET_PDEATHSIG``); the engine then cancels the build as it does
when its own client goes away, and no tag appears. The image-id file (and whatever the
backend puts in the temp dir, e.g. Docker's private config for a fresh context sync)
live in a temp dir that is always removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rtbuild._framework.deadline import current_deadline
from rtbuild._framework.interrupts import cancellable, on_cancel, raise_if_cancelled
from rtbuild._framework.paths import keep_newest, state_dir
from rtbuild._framework.progress import get_reporter
from rtbuild.enginekit._logs import flock_held, hold_log
from rtbuild.enginekit._proxyargs import client_argv
from rtbuild.enginekit._redact import redact_argv
from rtbuild.enginekit._stop import (
    EngineProbe,
    engine_went_silent,
    register,
    silent_engine_error,
    stop_all,
    stop_at,
    stop_process_group,
    unregister,
)

TAIL_LINES = 20
#: A step's first line: BuildKit's plain progress, Buildah's, the legacy builder's.
STEP_PATTERNS = (
    re.compile(r"^#\d+ \[[^\]]+\] (.+)$"),
    re.compile(r"^STEP \d+(?:/\d+)?: (.+)$"),
    re.compile(r"^Step \d+/\d+ : (.+)$"),
)
_PR_SET_PDEATHSIG = 1


def step_of(line: str) -> str | None:
    """The instruction a progress line starts, if it starts one."""
    for pattern in STEP_PATTERNS:
        match = pattern.match(line)
        if match:
            return match.group(1)
    return None


def default_log_dir() -> str:
    return str(state_dir("logs"))


def rotate_logs(log_dir: str, *, keep: int | None, max_age_days: float | None) -> None:
    """Remove build logs beyond the newest ``keep`` and those older than ``max_age_days``;
    never one a running build still writes (its flock: more builds at once than ``keep``,
    or a long silent step, removed a running build's log)."""

    def select(name: str) -> bool:
        return name.startswith("build-") and name.endswith(".log") and not flock_held(os.path.join(log_dir, name))

    keep_newest(log_dir, keep=keep, max_age_days=max_age_days, select=select)


def log_path_for(log_dir: str, tag: str) -> str | None:
    """A new log file for ``tag``; ``None`` (with a warning) when the log dir is unwritable."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag)[:80]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        os.makedirs(log_dir, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"build-{stamp}-{safe}-", suffix=".log", dir=log_dir)
    except OSError as exc:
        get_reporter().event(
            "warning",
            message=f"cannot write a build log in {log_dir} ({exc.strerror}); building without one",
        )
        return None
    os.close(fd)
    return path


@dataclass
class RunResult:
    returncode: int
    log_path: str | None
    image_id: str | None = None
    tail: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def die_with_parent() -> None:
    """In the child before exec (``preexec_fn``): SIGKILL when the thread that started it
    dies, kill -9 of rtbuild included. For any engine child a backend starts itself."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


on_cancel(stop_all)


def run_build(
    argv: list[str],
    *,
    env: dict[str, str],
    log_path: str | None,
    stream: bool = True,
    keep_lines: int = 400,
    redact: Callable[[str], str] | None = None,
    shown_argv: list[str] | None = None,
    env_in: Callable[[str], dict[str, str]] | None = None,
    on_line: Callable[[str], None] | None = None,
    on_started: Callable[[], None] | None = None,
    pass_fds: Sequence[int] = (),
    probe: EngineProbe | None = None,
    proxies_in_env: bool = False,
) -> RunResult:
    """Run ``argv`` (a ``docker build``/``podman build`` command ending with the context,
    without ``--iidfile``) and stream its output.

    ``redact`` is applied to every output line before it is logged, kept or reported;
    ``shown_argv`` is the command as the log shows it (default: ``argv`` with secret build-arg
    values masked, :func:`redact_argv`); build-arg values rtbuild masks reach the engine in
    its environment, never on its command line (which any local user can read);
    ``env_in(tmpdir)`` adds environment that needs files in the run's temp dir;
    ``on_line`` sees every (masked) output line as it arrives (the step profile is timed from it);
    ``on_started`` is called once the engine process runs (e.g.
    :meth:`rtbuild.enginekit.ConcurrentDigest.engine_started`);
    ``pass_fds`` are file descriptors the engine inherits (e.g. an in-memory ``--authfile``
    named ``/proc/self/fd/N``: credentials that never touch disk or argv);
    ``probe`` asks the engine whether it still answers when a stopped build's client is slow
    to exit (Ctrl-C, ``build_timeout``): a silent engine's client is killed at once, and the
    build ends in an :class:`~rtbuild.errors.EngineUnavailableError` saying the engine stopped
    answering (on Ctrl-C, a warning; the interrupt goes on); ``proxies_in_env`` says the
    client makes no proxied connection of its own (the docker CLI over a unix socket or ssh):
    a proxy-named build arg holding a password then travels in its environment too, where
    otherwise (rtbuild's own value of that variable differing) the build is refused with a
    ``ConfigError`` rather than the password put on the command line.
    """
    reporter = get_reporter()
    clean = redact or (lambda text: text)
    deadline = current_deadline()
    expired = threading.Event()
    timer: threading.Timer | None = None
    last_step: str | None = None
    tmpdir = tempfile.mkdtemp(prefix="rtbuild-build-")
    iidfile = os.path.join(tmpdir, "iid")
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    lines: deque[str] = deque(maxlen=keep_lines)
    proc: subprocess.Popen[bytes] | None = None
    cancel_unregister: Callable[[], None] | None = None
    log = None
    try:
        child_env = {**os.environ, **env}
        if env_in is not None:
            child_env.update(env_in(tmpdir))
        # Values rtbuild masks go in the engine client's environment, not on its command
        # line, which every local user can read (/proc/PID/cmdline, ps).
        run_argv, hidden = client_argv(argv, child_env, proxies_in_env=proxies_in_env)
        child_env.update(hidden)
        if log_path is not None:
            try:
                log = open(log_path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
                hold_log(log)  # prune keeps it while the build runs (silent steps leave it unmodified)
                # Masked by value too: a secret's value may also be a plain build arg or label.
                log.write("$ " + clean(" ".join(shown_argv or redact_argv(argv))) + "\n")
                log.flush()
            except OSError as exc:
                reporter.event("warning", message=f"cannot write the build log {log_path}: {exc.strerror}")
                _close_quietly(log)
                log = None
        try:
            proc = subprocess.Popen(
                [*run_argv[:-1], "--iidfile", iidfile, run_argv[-1]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=child_env,
                start_new_session=True,
                preexec_fn=die_with_parent,
                pass_fds=tuple(pass_fds),
            )
        except OSError as exc:
            if exc.errno == errno.E2BIG:
                raise _too_long(argv, log_path if log is not None else None) from None
            raise
        register(proc, probe)
        if cancellable():  # a BuildSession's close stops the builds of its own scope only
            cancel_unregister = on_cancel(functools.partial(_stop_in_background, proc, probe))
        raise_if_cancelled()  # cancelled before stop_all could see it: stopped below
        if deadline is not None:
            timer = stop_at(deadline[0], proc, expired, probe)
        if on_started is not None:
            on_started()
        assert proc.stdout is not None
        for raw in proc.stdout:
            text = clean(raw.decode("utf-8", "replace").rstrip("\r\n"))
            if log is not None:
                try:
                    log.write(text + "\n")
                except OSError as exc:  # a full disk: the build goes on, the log stops
                    reporter.event("warning", message=f"build log {log_path} stopped: {exc.strerror}")
                    _close_quietly(log)
                    log = None
            tail.append(text)
            lines.append(text)
            if on_line is not None:
                on_line(text)
            step = step_of(text) if text else None
            last_step = step or last_step
            if stream and text:
                reporter.line(text, source="build")
                if step:
                    reporter.event("step", step=step)
        returncode = proc.wait()
        if probe is not None and engine_went_silent(proc) and returncode != 0:
            during = f"build_timeout {deadline[1]:g} s" if expired.is_set() and deadline else "cancelled"
            raise silent_engine_error(
                probe, during=during, step=last_step, tail=list(tail), log_path=log_path if log is not None else None
            )
        if expired.is_set() and deadline is not None and returncode != 0:
            raise _timed_out(deadline[1], last_step, list(tail), log_path if log is not None else None)
        image_id = None
        if returncode == 0 and os.path.exists(iidfile):
            with open(iidfile, encoding="utf-8") as handle:
                image_id = handle.read().strip() or None
        return RunResult(returncode, log_path if log is not None else None, image_id, list(tail), list(lines))
    except BaseException as exc:
        if proc is not None and proc.poll() is None:
            stop_process_group(proc, probe)
        if probe is not None and proc is not None and engine_went_silent(proc) and isinstance(exc, KeyboardInterrupt):
            reporter.event(
                "warning",
                message=f"{probe.name} stopped answering: the build's client was killed as the engine did not"
                f" answer a ping; {probe.hint}",
            )
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if cancel_unregister is not None:
            cancel_unregister()
        if proc is not None:
            unregister(proc)
        _close_quietly(log)
        shutil.rmtree(tmpdir, ignore_errors=True)


def _stop_in_background(proc: subprocess.Popen[bytes], probe: EngineProbe | None = None) -> None:
    """Stop ``proc`` from a thread of its own: a ``BuildSession.close()`` stopping many builds
    returns at once rather than after each one's SIGINT-SIGTERM-SIGKILL wait in turn."""
    if proc.poll() is None:
        args = (proc,) if probe is None else (proc, probe)
        threading.Thread(target=stop_process_group, args=args, name="rtbuild-stop-build", daemon=True).start()


def _timed_out(seconds: float, step: str | None, tail: list[str], log_path: str | None) -> Exception:
    from rtbuild.errors import BuildFailedError

    return BuildFailedError(
        f"the build ran longer than build_timeout ({seconds:g} s) and was stopped"
        + (f" during step {step}" if step else ""),
        step=f"build step {step}" if step else "build",
        log_tail=tail,
        log_path=log_path,
        hint="if it needs longer, raise build_timeout (--build-timeout, RTBUILD_BUILD_TIMEOUT); if it stopped"
        " making progress, the log's last lines say where (a registry that stalls a layer download holds the"
        " engine until this deadline)",
    )


#: Linux's limit on one argument (MAX_ARG_STRLEN: 32 pages), its terminating NUL included.
MAX_ARG_BYTES = 32 * 4096


def _too_long(argv: Sequence[str], log_path: str | None) -> Exception:
    """The kernel refused the engine's command line (E2BIG): a ``ConfigError`` naming the
    longest argument by its build-arg or label name, never by its value."""
    from rtbuild.errors import ConfigError

    sizes = [len(arg.encode("utf-8", "surrogateescape")) + 1 for arg in argv]
    longest = max(range(len(argv)), key=sizes.__getitem__)
    flag, arg = (argv[longest - 1] if longest else ""), argv[longest]
    for option in ("--build-arg", "--label"):
        if arg.startswith(option + "="):
            flag, arg = option, arg[len(option) + 1 :]
    what = {"--build-arg": "build arg", "--label": "label"}.get(flag)
    named = f"{what} {arg.partition('=')[0]}" if what else f"argument {longest + 1}"
    return ConfigError(
        f"the engine's command line is too long for the kernel (argument list too long): the longest"
        f" argument, {named}, takes {sizes[longest]:,} bytes (Linux allows {MAX_ARG_BYTES:,} per argument);"
        f" {sum(sizes):,} in all",
        step="start engine",
        log_path=log_path,
        hint="pass a large value as a file instead: put it in the build context and COPY it, or use"
        " --secret id=NAME,src=FILE for a secret",
    )


def _close_quietly(handle: object) -> None:
    with contextlib.suppress(Exception):
        handle.close()  # type: ignore[attr-defined]


__all__ = [
    "STEP_PATTERNS",
    "TAIL_LINES",
    "EngineProbe",
    "RunResult",
    "default_log_dir",
    "die_with_parent",
    "log_path_for",
    "rotate_logs",
    "run_build",
    "step_of",
    "stop_all",
    "stop_process_group",
]
