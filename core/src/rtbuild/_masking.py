"""What a secret looks like, and how rtbuild shows values that may hold one.

The lowest layer of the redaction rules (:mod:`rtbuild.enginekit` re-exports them): a
secret-looking name (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``, ``*_KEY``), the password
of a URL (``https://user:PW@host/``), and :func:`masked_repr`, the ``repr`` of the public
dataclasses (:class:`~rtbuild.BuildRequest`, :class:`~rtbuild.BuildResult`, ``Config``,
the backends' settings...): a request logged with ``%r`` or an f-string shows
``API_TOKEN='***'`` and ``https://user:***@host``, while the fields keep their values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from reprlib import recursive_repr
from typing import Any

MASK = "***"
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|_KEY$|^KEY$", re.IGNORECASE)

#: The password of a URL's user part: ``https://__token__:PW@pypi.example/simple``. It ends
#: at the authority's *last* ``@``, as curl, pip (urllib) and Go's net/url read it: a password
#: holding a raw ``@`` (``u:p@ss@host``) is the password whole, not ``p`` with ``ss`` shown.
#: The user part ends at its first ``:``, so a user name holding a raw ``@`` (an e-mail address:
#: ``https://me@corp.example:PW@host/``) does not hide the password after it.
URL_PASSWORD = re.compile(r"(?<=://)([^/?#\s:]*):([^/?#\s]+)@")

#: Flags whose next argument (or ``=`` value) is ``USER:PASSWORD`` (podman, buildah, skopeo).
_CREDS_FLAGS = ("--creds", "--src-creds", "--dest-creds")
#: The parts of a ``--secret`` spec that name things; any other part may be the secret itself.
SECRET_SPEC_KEYS = ("id", "src", "source", "env", "type")


def looks_secret(name: str) -> bool:
    """Whether a build-arg name looks like it carries a secret."""
    return bool(_SECRET_NAME.search(name))


def url_passwords(value: str) -> list[str]:
    """The passwords of the URLs in ``value`` (``PIP_INDEX_URL=https://user:PW@host/...``)."""
    return [match.group(2) for match in URL_PASSWORD.finditer(value)]


def mask_url_passwords(value: str) -> str:
    """``value`` with the password of every URL in it shown as ``***`` (``https://user:***@host/``)."""
    return URL_PASSWORD.sub(lambda match: f"{match.group(1)}:{MASK}@", value)


def shown_secret_spec(text: str) -> str:
    """A ``--secret`` spec as rtbuild may show it: the parts it knows (names and paths) as
    given, every other part as ``***``: ``--secret "$TOKEN"`` or ``value=...`` puts the
    secret itself there (a base64 token's ``=`` padding makes it look like ``KEY=``)."""
    shown = []
    for part in text.split(","):
        key, sep, _ = part.partition("=")
        shown.append(part if sep and key.strip() in SECRET_SPEC_KEYS else MASK)
    return ",".join(shown)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with ``--build-arg NAME=VALUE`` values of secret-looking names masked,
    and the password of any URL in a build-arg value (``https://user:***@host/``)."""
    out: list[str] = []
    after_flag = False
    for arg in argv:
        if after_flag:
            out.append(_shown_build_arg(arg))
            after_flag = False
            continue
        if arg == "--build-arg":
            after_flag = True
            out.append(arg)
        elif arg.startswith("--build-arg="):
            out.append("--build-arg=" + _shown_build_arg(arg[len("--build-arg=") :]))
        else:
            out.append(arg)
    return out


def _shown_build_arg(arg: str) -> str:
    name, sep, value = arg.partition("=")
    if not sep:
        return arg
    if looks_secret(name):
        return f"{name}={MASK}"
    return f"{name}={mask_url_passwords(value)}"


def shown_args(argv: Sequence[str]) -> list[str]:
    """Raw engine arguments as rtbuild may show them anywhere: :func:`redact_argv`, then
    ``--creds USER:PASSWORD`` as ``USER:***``, a ``--secret`` spec's unknown parts as
    ``***``, any ``NAME=VALUE`` of a secret-looking name as ``NAME=***`` and every URL's
    password as ``***``."""
    out = redact_argv(argv)
    for index, arg in enumerate(out):
        flag, sep, value = arg.partition("=")
        before = out[index - 1] if index else ""
        if sep and flag in _CREDS_FLAGS:
            out[index] = f"{flag}={_shown_creds(value)}"
        elif before in _CREDS_FLAGS and argv[index - 1] == before:
            out[index] = _shown_creds(arg)
        elif sep and flag == "--secret":
            out[index] = f"--secret={shown_secret_spec(value)}"
        elif before == "--secret" and argv[index - 1] == before:
            out[index] = shown_secret_spec(arg)
        else:
            out[index] = _shown_text(out[index])
    return out


def _shown_creds(value: str) -> str:
    user, sep, password = value.partition(":")
    return f"{user}:{MASK}" if sep and password else value


def _shown_text(text: str) -> str:
    name, sep, _ = text.partition("=")
    if sep and not name.startswith("-") and looks_secret(name):
        return f"{name}={MASK}"
    return mask_url_passwords(text)


class _Cycle:
    """What a container that holds itself shows in its own place, as ``repr`` does."""

    def __repr__(self) -> str:
        return "..."


def masked(value: Any, name: str = "", _seen: frozenset[int] = frozenset()) -> Any:
    """``value`` as rtbuild may show it: under a secret-looking ``name`` (a key of a mapping,
    a field) every string, bytes or number is ``***``; elsewhere a string has its URL
    passwords masked, a list of strings is read as engine arguments (:func:`shown_args`), and
    mappings, lists and tuples are masked item by item. Other objects are left to their own
    ``repr``."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (str, bytes, int, float)):
        if name and looks_secret(name) and value not in ("", b""):
            return MASK
        return _shown_text(value) if isinstance(value, str) else value
    if isinstance(value, (dict, list, tuple)):
        if id(value) in _seen:
            return _Cycle()
        _seen = _seen | {id(value)}
    if isinstance(value, dict):
        return {key: masked(item, key if isinstance(key, str) else name, _seen) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = list(value)
        if items and all(isinstance(item, str) for item in items) and not (name and looks_secret(name)):
            items = shown_args(items)
        return type(value)(masked(item, name, _seen) for item in items)
    return value


@recursive_repr()
def masked_repr(obj: Any) -> str:
    """A dataclass's ``repr`` with every field shown through :func:`masked`: what logging a
    request, a result or a settings object with ``%r`` may print."""
    from dataclasses import fields

    shown = ", ".join(f"{f.name}={masked(getattr(obj, f.name), f.name)!r}" for f in fields(obj) if f.repr)
    return f"{type(obj).__qualname__}({shown})"


__all__ = [
    "MASK",
    "URL_PASSWORD",
    "looks_secret",
    "mask_url_passwords",
    "masked",
    "masked_repr",
    "redact_argv",
    "shown_args",
    "shown_secret_spec",
    "url_passwords",
]
