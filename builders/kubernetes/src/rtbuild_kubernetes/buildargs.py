"""Build args whose names look secret (``rtbuild.enginekit``'s rule: ``*TOKEN*``,
``*PASSWORD*``, ``*SECRET*``, ``*_KEY``...): warned about, carried into the pod through the
per-build Secret instead of the pod spec, shown as ``NAME=***`` and masked in output."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

#: The Secret's data key holding build arg ``NAME`` (keys allow ``[-._a-zA-Z0-9]``).
KEY_PREFIX = "build-arg."
#: Names that can be both an environment variable of the build container and a shell
#: variable of the buildkit script; another secret-looking name stays inline (and masked).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def secret_names(build_args: Mapping[str, str]) -> list[str]:
    """The build args that travel in the per-build Secret: the secret-looking ones, and
    those holding a URL with a password (``PIP_INDEX_URL=https://user:PW@host/simple``),
    which in the pod spec anyone who may read Jobs could read."""
    from rtbuild.enginekit import looks_secret, url_passwords

    carried = [name for name, value in build_args.items() if looks_secret(name) or url_passwords(str(value))]
    return sorted(name for name in carried if _IDENTIFIER.fullmatch(name))


def refuse_inline_secrets(build_args: Mapping[str, str]) -> None:
    """A build arg that should travel in the Secret but cannot (its name is no shell
    identifier, so no environment variable of the build script) is refused: inline, its
    value would be in the Job's pod spec, readable by anyone who may read Jobs."""
    from rtbuild import ConfigError
    from rtbuild.enginekit import looks_secret, url_passwords

    for name, value in build_args.items():
        if (looks_secret(name) or url_passwords(str(value))) and not _IDENTIFIER.fullmatch(name):
            raise ConfigError(
                f"build arg {name!r} holds a secret but its name is not a shell identifier, so it cannot"
                " travel in the build's Secret and would be written into the Job's pod spec",
                step="validate request",
                hint="rename it with letters, digits and _ only (ARG in the Dockerfile too), or build it"
                " with the Docker or Podman builder and --secret",
            )


def split_extra(extra: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``--build-arg NAME=VALUE`` of secret-looking names, or whose value holds a URL with a
    password, taken out of extra arguments (so they are carried in the Secret and masked like
    ``build_args``); the remaining arguments."""
    from rtbuild.enginekit import looks_secret, url_passwords

    rest: list[str] = []
    found: dict[str, str] = {}
    args = list(extra)
    index = 0
    while index < len(args):
        arg, value, width = args[index], None, 1
        if arg == "--build-arg" and index + 1 < len(args):
            value, width = args[index + 1], 2
        elif arg.startswith("--build-arg="):
            value = arg.split("=", 1)[1]
        name, sep, val = (value or "").partition("=")
        if sep and (looks_secret(name) or url_passwords(val)):
            found[name] = val
        else:
            rest.extend(args[index : index + width])
        index += width
    return rest, found


def masked(build_args: Mapping[str, str]) -> dict[str, str]:
    """``build_args`` with every secret-looking value replaced by ``***``, and a URL's
    password by ``user:***@`` (the dry run)."""
    from rtbuild.enginekit import MASK, looks_secret, mask_url_passwords

    return {name: MASK if looks_secret(name) else mask_url_passwords(value) for name, value in build_args.items()}


#: What the secret-looking build-arg warning (``rtbuild.enginekit.warn_secret_args``) adds here.
SECRET_HANDLING = "and reach the pod only through the per-build Secret,"
SECRET_ADVICE = "pass secrets with --secret id=NAME,env=VAR where the builder supports it"


__all__ = [
    "KEY_PREFIX",
    "SECRET_ADVICE",
    "SECRET_HANDLING",
    "masked",
    "refuse_inline_secrets",
    "secret_names",
    "split_extra",
]
