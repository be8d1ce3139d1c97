"""Keeping secrets out of every rtbuild output: logs, progress events, errors, JSON.

Build args whose names look secret (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``, ``*_KEY``)
are shown as ``NAME=***`` wherever rtbuild prints a command (a URL's password in any other
build arg as ``user:***@``), and their values (and the
values of ``--secret`` sources) are replaced by ``***`` in every line of engine output
rtbuild keeps or forwards (each line of a multi-line value on its own, as engine output
comes line by line). Values shorter than :data:`MIN_VALUE` characters are only
redacted structurally (replacing every ``a`` in a log would hide nothing and break it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

from rtbuild._masking import MASK, looks_secret, mask_url_passwords, redact_argv, url_passwords

T = TypeVar("T")
MIN_VALUE = 4


def _spellings(password: str) -> list[str]:
    """``password`` as written and as a tool may print it: percent-decoded (``p%40ss`` is
    ``p@ss`` once pip or curl read the URL)."""
    from urllib.parse import unquote

    return list(dict.fromkeys((password, unquote(password))))


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quoted(text: str) -> str:
    """``text`` as Go's ``%q`` (``strconv.Quote``) shows it between its quotes: the engines'
    errors quote values that way (``Get "https://host/?token=a\\"b": ...``)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif not char.isprintable():
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x80 else char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def _quoted_spellings(text: str) -> list[str]:
    """``text`` as engines and tools may print it inside another string: quoted by Go's
    ``%q`` or JSON (a ``"`` or ``\\`` in it escaped), or percent-encoded in a URL."""
    import json
    from urllib.parse import quote

    spellings = (_go_quoted(text), json.dumps(text, ensure_ascii=False)[1:-1], quote(text, safe=""), quote(text))
    return [spelt for spelt in dict.fromkeys(spellings) if spelt != text]


def secret_arg_names(build_args: Mapping[str, str]) -> list[str]:
    return sorted(name for name in build_args if looks_secret(name))


#: What :func:`warn_secret_args` tells a user to do instead, where the builder takes ``--secret``.
SECRET_ADVICE = "pass secrets with --secret id=NAME,env=VAR instead"


def warn_secret_args(build_args: Mapping[str, str], *, handling: str = "", advice: str = SECRET_ADVICE) -> list[str]:
    """One ``warning`` event naming the secret-looking build args, and one naming those whose
    value holds a URL with a password (``PIP_INDEX_URL=https://user:PW@host/simple``);
    returns their names.

    ``handling`` says what else the builder does with the secret-looking ones' values (after
    "masked in rtbuild's output"); ``advice`` replaces the ``--secret`` hint for a builder
    without it. Values never reach the events: only names.
    """
    from rtbuild._framework.progress import get_reporter

    names = secret_arg_names(build_args)
    urls = sorted(name for name, value in build_args.items() if name not in names and url_passwords(str(value)))
    if names:
        also = f" {handling.strip()}" if handling.strip() else ""
        get_reporter().event(
            "warning",
            names=names,
            message=f"build arg(s) {', '.join(names)} look secret: their values are masked in rtbuild's"
            f" output{also} but stay in the image's history; {advice}",
        )
    if urls:
        get_reporter().event(
            "warning",
            names=urls,
            message=f"build arg(s) {', '.join(urls)} hold a URL with a password: it is masked in rtbuild's"
            f" output but stays in the image's history; {advice}",
        )
    return names + urls


class Redactor:
    """Replaces known secret values in text; build once per build."""

    def __init__(self, values: Iterable[str | bytes] = ()) -> None:
        texts: set[str] = set()
        for value in values:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            # Engine output is masked line by line, so each line of a multi-line value
            # (a PEM key, an .npmrc) is a value of its own: a RUN that prints the file
            # prints it one line at a time.
            for candidate in (text, text.strip(), *(line.strip() for line in text.splitlines())):
                if len(candidate) >= MIN_VALUE:
                    texts.add(candidate)
                    # An engine's error may quote it (Go's %q, JSON) or a URL carry it encoded.
                    texts.update(_quoted_spellings(candidate))
        # Longest first, so a value containing another is masked whole.
        ordered = sorted(texts, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def mask(self, value: T) -> T:
        """``value`` with every string inside (dicts, lists, tuples) masked."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self(value)  # type: ignore[return-value]
        if isinstance(value, bytes):  # a process's output (CalledProcessError.output)
            return self(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")  # type: ignore[return-value]
        if isinstance(value, dict):
            return {key: self.mask(item) for key, item in value.items()}  # type: ignore[return-value]
        if isinstance(value, (list, tuple)):
            return type(value)(self.mask(item) for item in value)
        return value

    @classmethod
    def for_build(cls, build_args: Mapping[str, str], secret_values: Iterable[bytes] = ()) -> Redactor:
        values: list[str | bytes] = [build_args[name] for name in secret_arg_names(build_args)]
        # A URL's password alone too: a tool may print the URL otherwise spelt (another path).
        values.extend(
            spelt
            for value in build_args.values()
            for password in url_passwords(str(value))
            for spelt in _spellings(password)
        )
        values.extend(secret_values)
        return cls(values)


def secrets_in_args(args: Sequence[str]) -> list[bytes]:
    """The values of the ``--secret`` sources named in raw engine arguments (``--extra``,
    ``extra_build_args``, a v1 builder's rendered flags), read to mask them as the
    request's own ``secrets`` are. A spec that does not parse, or a source that cannot be
    read, is left to the engine, which reports it."""
    from rtbuild.builder import BuildSecret
    from rtbuild.errors import AgentRuntimeBuildError

    specs = [arg[len("--secret=") :] for arg in args if arg.startswith("--secret=")]
    specs += [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--secret"]
    values = []
    for spec in specs:
        try:
            values.append(BuildSecret.parse(spec).value())
        except AgentRuntimeBuildError:
            continue
    return values


#: Names the engine clients themselves read from their environment: a build arg of such a
#: name stays on the command line (in the environment it would change how docker or podman
#: reach their engine or registries), unless the environment already holds that value.
_CLIENT_ENV = re.compile(
    r"^((HTTPS?|FTP|ALL|NO)_PROXY|PATH|HOME|TMPDIR|(DOCKER|BUILDX|BUILDKIT|CONTAINERS|PODMAN|REGISTRY|XDG)_.*)$",
    re.IGNORECASE,
)


def build_args_via_env(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """``argv`` with each ``--build-arg NAME=VALUE`` whose value rtbuild masks (a
    secret-looking name, a URL with a password) given as ``--build-arg NAME``, and the
    environment that carries those values: docker, buildx and podman take a value-less
    build arg from their environment. A process's command line is readable by every local
    user (``/proc/PID/cmdline``, ``ps``), its environment only by its owner.

    A name given more than once takes its last value, as the engines do; a name also given
    without a value (``--build-arg NAME``, the environment's) is left as it is."""
    pairs = list(build_arg_specs(argv))
    final: dict[str, str] = {}
    valueless: set[str] = set()
    for _, _, spec in pairs:
        name, sep, value = spec.partition("=")
        if sep:
            final[name] = value
        else:
            valueless.add(name)
    env = {
        name: value
        for name, value in final.items()
        if name
        and name not in valueless
        and (looks_secret(name) or url_passwords(value))
        and (not _CLIENT_ENV.match(name) or environ.get(name) == value)
    }
    out = list(argv)
    for index, joined, spec in reversed(pairs):
        name = spec.partition("=")[0]
        if name in env:
            out[index : index + (1 if joined else 2)] = [f"--build-arg={name}"] if joined else ["--build-arg", name]
    return out, env


def build_arg_specs(argv: Sequence[str]) -> Iterator[tuple[int, bool, str]]:
    """``(index, joined, NAME[=VALUE])`` of each build arg in ``argv`` (``--build-arg=...``
    is joined; ``--build-arg ...`` takes the next argument)."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg.startswith("--build-arg="):
            yield index, True, arg[len("--build-arg=") :]
        elif arg == "--build-arg" and index + 1 < len(argv):
            yield index, False, argv[index + 1]
            index += 1
        index += 1


__all__ = [
    "MASK",
    "Redactor",
    "looks_secret",
    "mask_url_passwords",
    "redact_argv",
    "secret_arg_names",
    "secrets_in_args",
    "url_passwords",
]
