"""The error tree: every failure a user can cause ends in one of these.

Each error carries what a user needs to act: the failing ``step``, the last lines of
the log (``log_tail``), the full log's path when one was kept, and a ``hint``. The CLI
prints :meth:`AgentRuntimeBuildError.render` and exits with :attr:`exit_code`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # imported before the CLI can catch a Ctrl-C: see rtbuild/__init__.py
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

#: Exit codes documented in docs/cli.md.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: The image was built (and pushed, if asked) but a ``post_build`` hook failed.
EXIT_POST_BUILD = 4


class AgentRuntimeBuildError(Exception):
    """Base of every error rtbuild raises."""

    exit_code: int = EXIT_FAILED
    default_hint: str | None = None

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        log_tail: Sequence[str] | str | None = None,
        hint: str | None = None,
        log_path: str | None = None,
        blame: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.step = step
        if isinstance(log_tail, str):
            log_tail = log_tail.splitlines()
        self.log_tail: list[str] = list(log_tail or [])
        self.hint = hint if hint is not None else self.default_hint
        self.log_path = log_path
        #: Who to blame: "plugin NAME (distribution DIST)" or "builder NAME (...)".
        self.blame = blame

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "step": self.step,
            "log_tail": self.log_tail,
            "hint": self.hint,
            "log_path": self.log_path,
            "blame": self.blame,
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        """Human text for the terminal: message, step, log tail, log path, hint."""
        lines = [f"error: {self.message}"]
        if self.step:
            lines.append(f"  step: {self.step}")
        if self.blame:
            lines.append(f"  from: {self.blame}")
        if self.log_tail:
            lines.append("  last log lines:")
            lines.extend(f"    | {line}" for line in self.log_tail)
        if self.log_path:
            lines.append(f"  full log: {self.log_path}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class ConfigError(AgentRuntimeBuildError):
    """Malformed or unknown configuration (file, environment or flags)."""

    exit_code = EXIT_USAGE


class InvalidReferenceError(ConfigError):
    """An image reference that does not follow ``[REGISTRY/]NAME[:TAG][@DIGEST]``."""


class BuildContextError(AgentRuntimeBuildError):
    """The build context is unusable: missing path, missing Dockerfile, bad .dockerignore."""

    exit_code = EXIT_USAGE
    default_hint = "check the PATH argument: it must be a directory holding a Dockerfile"


class BuilderNotFoundError(ConfigError):
    """The selected builder is not installed.

    ``available``: the installed builders' names; ``failed``: those of them whose class
    fails to import, with why: named as such, never offered as a choice.
    """

    def __init__(
        self, name: str, available: Iterable[str], *, failed: Mapping[str, str] | None = None, **kwargs: object
    ) -> None:
        import difflib  # only when a name is wrong

        failed = dict(failed or {})
        available = sorted(set(available) - set(failed))
        choices = ", ".join(available) or ("(none that imports)" if failed else "(none installed)")
        if failed:
            choices += "; installed but failed to import: " + ", ".join(f"{n} ({e})" for n, e in sorted(failed.items()))
        close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
        kwargs.setdefault(
            "hint",
            "install a backend distribution (e.g. `pip install rtbuild-docker`) or pick an installed"
            " one: the name comes from --builder, else RTBUILD_BUILDER, else `builder` in the"
            " configuration file (a pre_build hook may set it too)",
        )
        super().__init__(
            f"builder {name!r} not recognised{f' (did you mean {close[0]!r}?)' if close else ''},"
            f" choose one of: {choices}",
            step="select builder",
            **kwargs,  # type: ignore[arg-type]
        )
        self.name = name
        self.available = available
        self.failed = failed


class PluginError(AgentRuntimeBuildError):
    """A plugin or builder failed to load, is duplicated or is invalid."""

    exit_code = EXIT_USAGE


class PolicyError(AgentRuntimeBuildError):
    """A plugin refused the build by policy (a scan finding, a forbidden base image, ...)."""

    exit_code = EXIT_USAGE


class CapabilityError(ConfigError):
    """The request asks for something the selected builder declares it cannot do."""

    default_hint = "run `rtbuild builders` to see what each installed builder supports"


class PluginLoadWarning(UserWarning):
    """A plugin failed to load and was skipped (``RTBUILD_STRICT_PLUGINS=1`` makes it an error)."""


class EngineUnavailableError(AgentRuntimeBuildError):
    """The container engine (daemon, cluster, service) cannot be reached."""


class BuildFailedError(AgentRuntimeBuildError):
    """The engine ran the build and a step failed."""


class RegistryError(AgentRuntimeBuildError):
    """A registry is unreachable or answered with an error."""


class RegistryAuthError(RegistryError):
    """A registry refused our credentials (or we had none)."""

    default_hint = "log in with `docker login REGISTRY` or check the credentials in ~/.docker/config.json"


class PushError(RegistryError):
    """Pushing an image was refused."""


class PostBuildError(AgentRuntimeBuildError):
    """The build succeeded (image built, pushed if asked) and then a ``post_build`` hook failed.

    :attr:`result` is the build's result (``to_dict()`` carries it as ``"result"``), so a
    caller still learns which image exists; the exit code (4) tells this case apart.
    """

    exit_code = EXIT_POST_BUILD

    def __init__(self, message: str, *, result: dict[str, object] | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.result = result

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "result": self.result}


class DownloadError(AgentRuntimeBuildError):
    """A file a build needs (e.g. a release archive a plugin installs) cannot be downloaded."""

    default_hint = "check the URL and that this host can reach it (proxy settings, HTTPS_PROXY)"


class ChecksumMismatchError(DownloadError):
    """A downloaded file's sha256 differs from the expected one; nothing was built."""

    default_hint = "fix the configured sha256, or the URL if it serves the wrong file"


__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_POST_BUILD",
    "EXIT_USAGE",
    "AgentRuntimeBuildError",
    "BuildContextError",
    "BuildFailedError",
    "BuilderNotFoundError",
    "CapabilityError",
    "ChecksumMismatchError",
    "ConfigError",
    "DownloadError",
    "EngineUnavailableError",
    "InvalidReferenceError",
    "PluginError",
    "PluginLoadWarning",
    "PolicyError",
    "PostBuildError",
    "PushError",
    "RegistryAuthError",
    "RegistryError",
]
