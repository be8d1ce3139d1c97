"""No credential in an image label.

A label is stored in the image's configuration (``docker inspect``), readable by anyone who
can pull the image, and rtbuild's own outputs showed it whole (the log's command line,
``--dry-run``). The usual way one gets there is a CI variable: GitLab's
``CI_REPOSITORY_URL`` is ``https://gitlab-ci-token:TOKEN@host/group/project.git``, and
``--label org.opencontainers.image.source=$CI_REPOSITORY_URL`` put the job token into the
image. A label value holding a URL with a password is refused before any work, and so is a
label name the engines refuse (empty, or holding whitespace).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rtbuild._masking import url_passwords
from rtbuild.errors import ConfigError


def _extra_labels(args: Sequence[str]) -> list[str]:
    """``KEY=VALUE`` of each ``--label`` among raw engine arguments (both spellings)."""
    found = [arg[len("--label=") :] for arg in args if arg.startswith("--label=")]
    found += [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--label"]
    return found


def refuse_label_credentials(labels: Mapping[str, str], extra_build_args: Sequence[str] = ()) -> None:
    """Raise a :class:`~rtbuild.ConfigError` naming the first label (never its value) whose
    value holds a URL with a password, in ``labels`` or a ``--label`` of the extra arguments."""
    pairs = [(str(key), str(value)) for key, value in labels.items()]
    pairs += [(spec.partition("=")[0], spec.partition("=")[2]) for spec in _extra_labels(extra_build_args)]
    for key, value in pairs:
        if not key.strip() or any(ch.isspace() for ch in key):
            # Docker refuses it ('label 'a b' contains whitespaces', exit 125) once the build
            # has started; a label name is reverse-DNS (org.opencontainers.image.source).
            raise ConfigError(
                f"label name {key!r} is empty or holds whitespace: engines refuse it",
                step="validate request",
                hint="name labels like org.example.team=agents (no spaces in the name; the value may hold them)",
            )
        if url_passwords(value):
            raise ConfigError(
                f"label {key!r} holds a URL with a password: the image would keep it in its configuration,"
                " readable by anyone who can pull it",
                step="validate request",
                hint="drop the user:password@ part of the URL (on GitLab CI use $CI_PROJECT_URL, not"
                " $CI_REPOSITORY_URL, which carries the job token)",
            )


__all__ = ["refuse_label_credentials"]
