"""The ``rtbuild`` command. Subcommands live in ``rtbuild.commands.*`` and load lazily, so
``rtbuild --help`` and ``--version`` import neither the docker SDK, rich, nor any backend.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import click

from rtbuild._version import __version__
from rtbuild.errors import EXIT_FAILED, AgentRuntimeBuildError, PluginLoadWarning

#: name -> "module:attribute" of each subcommand.
COMMANDS: dict[str, str] = {
    "build": "rtbuild.cli.commands.build:build",
    "build-many": "rtbuild.cli.commands.build_many:build_many",
    "exists": "rtbuild.cli.commands.exists:exists",
    "plugins": "rtbuild.cli.commands.listing:plugins",
    "builders": "rtbuild.cli.commands.listing:builders",
    "runtime": "rtbuild.cli.commands.runtime:runtime",
    "new": "rtbuild.cli.commands.new:new",
    "scan": "rtbuild.cli.commands.scan:scan",
    "context": "rtbuild.cli.commands.context:context",
    "metrics": "rtbuild.cli.commands.metrics:metrics",
    "prune": "rtbuild.cli.commands.prune:prune",
}

#: One-line help per command, so ``--help`` needs no imports.
SHORT_HELP: dict[str, str] = {
    "build": "Build an image from a context directory.",
    "build-many": "Build many images from a TOML or YAML file, in parallel.",
    "exists": "Exit 0 if an image is available (locally or pulled), 1 if not.",
    "plugins": "List discovered builders and plugins.",
    "builders": "List installed builders.",
    "runtime": "Build (or reuse) a runtime image from a base image and runtime plugins.",
    "new": "Write a new builder or plugin distribution (rtbuild new builder|plugin NAME).",
    "scan": "SBOM and OSV vulnerability check of a local image (needs rtbuild-sbom).",
    "context": "Show what a build would send: files, bytes, ignore rules, digest, warnings.",
    "metrics": "Report over recorded builds (durations, success, cache hits, sizes, steps).",
    "prune": "Remove old rtbuild images, dangling rebuilds, stale caches, old logs and dead locks.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        import importlib

        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        command: click.Command = getattr(module, attr)
        _accept_global_flags_after(command)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise click.UsageError(f"No such command {name!r}.{hint} See `rtbuild --help`.", ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _set_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None and value is not False:  # given after the command: it wins over one given before
        setattr(_STATE, str(param.name), value)


#: The global options a command also takes after its name: (option, State attribute, takes a value).
_GLOBALS = (
    ("--debug", "debug", False),
    ("--config", "config_path", True),
    ("--trace-hooks", "trace_hooks", False),
    ("--no-plugins", "no_plugins", False),
)


def _accept_global_flags_after(command: click.Command) -> None:
    """``rtbuild build ... --debug`` works like ``rtbuild --debug build ...`` (and
    ``--config FILE``, ``--trace-hooks``, ``--no-plugins``: 'No such option' after the
    command, for an option the docs name, read as a typo)."""
    if isinstance(command, click.Group):  # `rtbuild new builder NAME --debug` too
        for sub in command.commands.values():
            _accept_global_flags_after(sub)
    taken = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
    for flag, attr, valued in _GLOBALS:
        if flag not in taken:
            kind: dict[str, Any] = {"type": click.Path(dir_okay=False)} if valued else {"is_flag": True}
            option = click.Option([flag, attr], expose_value=False, callback=_set_global, hidden=True, **kind)
            command.params.append(option)


@dataclass
class State:
    """Global options, shared with every subcommand through ``ctx.obj``."""

    debug: bool = False
    config_path: str | None = None
    no_plugins: bool = False
    trace_hooks: bool = False
    json: bool = False
    #: The command's ``--json`` option was parsed (given or not): argv need not be guessed at.
    json_parsed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def load_config(self, **overrides: Any) -> Any:
        from rtbuild._framework.config import load_config

        if self.no_plugins:
            overrides["load_plugins"] = []
        if self.trace_hooks:
            overrides["trace_hooks"] = True
        if self.extra.get("lock_timeout") is not None:  # --lock-timeout (cli/commands/_options.py)
            overrides["lock_timeout"] = self.extra["lock_timeout"]
        if self.extra.get("build_timeout") is not None:  # --build-timeout (the same)
            overrides["build_timeout"] = self.extra["build_timeout"]
        return load_config(self.config_path, overrides=overrides)

    def plugin_manager(self, config: Any) -> Any:
        from rtbuild._framework.plugins import get_plugin_manager

        with hooks_write_to_stderr():  # a plugin module's print() at import is not the result
            return get_plugin_manager(config)


_STATE = State()

pass_state = click.make_pass_decorator(State)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="rtbuild")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Configuration file to use.")
@click.option("--no-plugins", is_flag=True, help="Load no rtbuild.plugins entry points.")
@click.option("--trace-hooks", is_flag=True, help="Print every hook call with its plugins and duration.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_path: str | None, no_plugins: bool, trace_hooks: bool) -> None:
    """rtbuild: build runtime container images on any engine."""
    _STATE.debug, _STATE.config_path = debug, config_path
    _STATE.no_plugins, _STATE.trace_hooks, _STATE.json = no_plugins, trace_hooks, False
    ctx.obj = _STATE


def json_option(func: Any) -> Any:
    """``--json``: print the result as JSON on stdout (and errors as JSON too)."""

    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        _STATE.json = _STATE.json or value
        _STATE.json_parsed = True
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=True,
        callback=callback,
        help="Print the result as JSON on stdout.",
    )(func)


#: Where results go: the real stdout, even while hooks run with stdout sent to stderr.
_RESULT_STREAM: list[TextIO] = []


def _result_stream() -> TextIO:
    return _RESULT_STREAM[-1] if _RESULT_STREAM else sys.stdout


def echo_result(text: str) -> None:
    """Print the command's result on stdout (never mixed with what hooks print)."""
    try:
        click.echo(text, file=_result_stream())
    except BrokenPipeError:
        # The reader went away (`| head -c0`): click then exits 1 without a word, and the
        # user saw a failure with no why (a build may well have succeeded).
        with contextlib.suppress(OSError, ValueError, AttributeError):
            click.echo("rtbuild: the result was not written: stdout was closed (broken pipe)", err=True)
        raise


def emit_json(payload: Any) -> None:
    import json  # imported here: --version and plain-text results never need it

    echo_result(json.dumps(payload, indent=2, default=str))


@contextlib.contextmanager
def hooks_write_to_stderr() -> Iterator[None]:
    """While builders and hooks run, their stdout goes to stderr: the result owns stdout.

    ``print()`` in a hook would otherwise corrupt ``--json`` or ``IMAGE=$(rtbuild build)``.
    File descriptor 1 is redirected too (subprocesses, C code) when stdout is a real file.
    """
    real = sys.stdout
    saved_fd: int | None = None
    try:
        if real.fileno() == 1 and sys.stderr.fileno() == 2:
            real.flush()
            saved_fd = os.dup(1)
            os.dup2(2, 1)
    except (AttributeError, OSError, ValueError):  # an in-memory stdout (tests, embedding)
        saved_fd = None
    _RESULT_STREAM.append(real)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _RESULT_STREAM.pop()
        if saved_fd is not None:
            sys.stderr.flush()
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def _report_error(exc: AgentRuntimeBuildError, argv: list[str] | None = None) -> int:
    if _STATE.debug:
        import traceback  # imported here: only --debug on an error needs it

        traceback.print_exception(exc, file=sys.stderr)
    click.echo(exc.render(), err=True)
    if _wants_json(argv):
        emit_json(exc.to_dict())
    return exc.exit_code


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    # A skipped plugin is news for the user, not a Python warning with a source line.
    from rtbuild._framework.outputmask import mask_running  # a plugin's warning may quote a build arg

    click.echo(f"warning: {mask_running(str(message))}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI, maps errors to exit codes, no traceback unless --debug."""
    global _STATE
    _STATE = State()  # fresh per invocation (tests call main() many times in one process)
    from rtbuild._framework.interrupts import install

    install()  # SIGTERM/SIGHUP clean up like Ctrl-C
    previous_hook = threading.excepthook
    threading.excepthook = _thread_failed  # a worker thread's bug: one line, not a traceback
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            warnings.simplefilter("always", PluginLoadWarning)
            return _main(argv)
    finally:
        threading.excepthook = previous_hook


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    """A background thread (rtbuild's, a backend's or a plugin's) that died of an exception:
    Python printed its whole traceback on stderr, --debug or not."""
    if args.exc_type is SystemExit:
        return
    from rtbuild._framework.outputmask import mask_running  # a plugin's thread may quote a build arg

    if _STATE.debug:
        import traceback  # imported here: only --debug needs it

        shown = traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
        click.echo(mask_running("".join(shown)), err=True, nl=False)
    name = args.thread.name if args.thread is not None else "?"
    click.echo(
        f"warning: internal error in background thread {name}: {args.exc_type.__name__}:"
        f" {mask_running(str(args.exc_value))}"
        " (run with --debug for the traceback, and report it)",
        err=True,
    )


def _main(argv: list[str] | None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="rtbuild", standalone_mode=False)
    except AgentRuntimeBuildError as exc:
        return _report_error(exc, argv)
    except click.ClickException as exc:
        exc.show()
        if _wants_json(argv):  # --json: one JSON object on stdout, whatever failed
            emit_json({"error": type(exc).__name__, "message": exc.format_message(), "exit_code": exc.exit_code})
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        from rtbuild._framework.interrupts import Terminated, cancel_all

        cancel_all()
        # click turns a KeyboardInterrupt into Abort: the signal is on its cause.
        cause = exc if isinstance(exc, Terminated) else exc.__cause__ or exc.__context__
        signum = cause.signum if isinstance(cause, Terminated) else 2
        name = "terminated" if isinstance(cause, Terminated) else "interrupted"
        click.echo(f"rtbuild: {name}", err=True)
        if _wants_json(argv) and not getattr(cause, "rtbuild_reported", False):  # one document only
            emit_json(
                {"error": "Interrupted", "message": f"rtbuild {name} (signal {signum})", "exit_code": 128 + signum}
            )
        return 128 + signum
    except Exception as exc:  # a bug, ours or a plugin's: say so plainly
        if _STATE.debug:
            import traceback  # imported here: only --debug on an error needs it

            traceback.print_exception(exc, file=sys.stderr)
        from rtbuild._framework.plugins._trace import failed_step

        click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
        step = failed_step(exc)  # the hook it escaped from: where a plugin author looks first
        if step:
            click.echo(f"  step: {step}", err=True)
        blame = getattr(exc, "rtbuild_blame", None)
        if blame:
            click.echo(f"  from: {blame}", err=True)
        who = f"it to the authors of {blame}" if blame else "it"
        click.echo(f"  hint: run with --debug for the traceback and report {who}", err=True)
        if _wants_json(argv):
            emit_json(
                {
                    "error": "InternalError",
                    "message": f"internal error: {type(exc).__name__}: {exc}",
                    "step": step,
                    "blame": blame,
                    "hint": f"run with --debug for the traceback and report {who}",
                    "exit_code": EXIT_FAILED,
                }
            )
        return EXIT_FAILED
    return rv if isinstance(rv, int) else 0


def _wants_json(argv: list[str] | None) -> bool:
    """``--json`` was asked for, even if the failure came before its option was parsed (then
    argv is searched; once parsed, a ``--json`` that is another option's value is not it)."""
    return _STATE.json or (not _STATE.json_parsed and "--json" in (sys.argv[1:] if argv is None else argv))


def run() -> None:
    """Console-script entry point."""
    code = main()
    interrupts = sys.modules.get("rtbuild._framework.interrupts")
    if interrupts is not None and interrupts.abandoned():
        # build-many stopped waiting for its workers (a second Ctrl-C/SIGTERM, or STOP_WAIT_S
        # after the first): the interpreter's exit would join them. What rtbuild printed and
        # its own exit handlers go first; then it ends without them.
        import atexit

        with contextlib.suppress(BaseException):  # yet another signal: end all the same
            sys.stdout.flush()
            sys.stderr.flush()
            atexit._run_exitfuncs()
        os._exit(code)
    # What is alive now lives until exit: frozen, it is left out of the interpreter's
    # final collection, a pass over every object (~10 ms of each command, 15 -> 6 ms of
    # exit after a no-op of the P1 context). main() does not freeze: a library caller's
    # heap is its own.
    gc.freeze()
    sys.exit(code)


__all__ = [
    "COMMANDS",
    "State",
    "cli",
    "echo_result",
    "emit_json",
    "hooks_write_to_stderr",
    "json_option",
    "main",
    "pass_state",
    "run",
]
