"""Image references: ``[registry/]repository[:tag][@digest]``.

Follows the grammar and normalisation of the docker/distribution ``reference`` package
(the one ``docker pull`` uses), so rtbuild and the engine agree on what a name means:

- the first path component is a registry when it holds a ``.`` or a ``:`` or is
  ``localhost``; otherwise the registry is ``docker.io``;
- a single-component Docker Hub name gets ``library/`` (``busybox`` is
  ``docker.io/library/busybox``);
- the tag defaults to ``latest`` unless a digest pins the image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtbuild.errors import InvalidReferenceError

DEFAULT_REGISTRY = "docker.io"
#: Where the Docker Hub API really lives (``docker.io`` is only the name).
DOCKER_HUB_API = "registry-1.docker.io"
#: The key ``docker login`` writes for Docker Hub in ``config.json``.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = re.compile(rf"{_HOST}(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX_ID = re.compile(r"[a-f0-9]{64}")
#: Hex lengths of the algorithms the OCI spec registers; others only need >= 32.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class Reference:
    """A normalised image reference. ``str()`` gives the fully qualified form."""

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def manifest_ref(self) -> str:
        """What ``/v2/<name>/manifests/<ref>`` takes: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host that serves the distribution API (``docker.io`` is served elsewhere)."""
        return DOCKER_HUB_API if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def familiar(self) -> str:
        """The short form ``docker images`` shows (``busybox:latest``, ``user/app:1``)."""
        name = self.repository if self.registry == DEFAULT_REGISTRY else self.name
        if self.registry == DEFAULT_REGISTRY and name.startswith("library/") and name.count("/") == 1:
            name = name[len("library/") :]
        return name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def _fail(text: str, problem: str) -> InvalidReferenceError:
    return InvalidReferenceError(
        f"invalid image reference {text!r}: {problem}",
        step="parse image reference",
        hint="use [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST], e.g. 127.0.0.1:5000/team/app:1.0"
        " (repository names are lowercase)",
    )


def split_domain(name: str) -> tuple[str, str]:
    """Split ``name`` into (registry, repository) the way docker does, normalised."""
    first, slash, rest = name.partition("/")
    if not slash or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        registry, repository = DEFAULT_REGISTRY, name
    else:
        registry, repository = first, rest
    if registry == "index.docker.io":
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository


def parse_reference(text: str) -> Reference:
    """Parse and normalise ``text``; raise :class:`InvalidReferenceError` when invalid."""
    if not isinstance(text, str) or not text.strip():
        raise _fail(str(text), "the reference is empty")
    if text != text.strip():
        raise _fail(text, "it has leading or trailing whitespace")
    remainder, at, digest = text.partition("@")
    if at:
        if not _DIGEST.fullmatch(digest):
            raise _fail(text, f"{digest!r} is not a digest (expected ALGORITHM:HEX, e.g. sha256:<64 hex>)")
        algorithm, _, hex_part = digest.partition(":")
        expected = _DIGEST_HEX_LENGTH.get(algorithm)
        if expected is not None and len(hex_part) != expected:
            raise _fail(text, f"a {algorithm} digest has {expected} hex characters, not {len(hex_part)}")
    # A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
    name, tag = remainder, None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        name, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise _fail(text, f"tag {tag!r} is invalid (letters, digits, '_', '.', '-'; at most 128 chars)")
    if not name:
        raise _fail(text, "the repository name is missing")
    if len(name) > MAX_NAME_LENGTH:
        raise _fail(text, f"the name is longer than {MAX_NAME_LENGTH} characters")
    registry, repository = split_domain(name)
    if registry != DEFAULT_REGISTRY and not _DOMAIN.fullmatch(registry):
        raise _fail(text, f"{registry!r} is not a valid registry host[:port]")
    if not _REPOSITORY.fullmatch(repository):
        if repository.lower() != repository and _REPOSITORY.fullmatch(repository.lower()):
            raise _fail(text, "repository names must be lowercase")
        raise _fail(text, f"{repository!r} is not a valid repository name")
    if _HEX_ID.fullmatch(name):
        raise _fail(text, "a 64-character hex string is an image ID, not a repository name")
    return Reference(registry, repository, tag if tag or digest else DEFAULT_TAG, digest or None)


def parse_tag(text: str) -> Reference:
    """:func:`parse_reference` of a name to tag a build with, which holds no digest: an
    engine tags no image ``NAME@sha256:...`` (Docker: 'build tag cannot contain a digest',
    once the build has started)."""
    ref = parse_reference(text)
    if ref.digest:
        raise InvalidReferenceError(
            f"invalid tag {text!r}: a build is tagged NAME[:TAG], not pinned to a digest",
            step="parse image reference",
            hint=f"drop '@{ref.digest.partition(':')[0]}:...': the registry gives a pushed image its digest",
        )
    return ref


__all__ = [
    "DEFAULT_REGISTRY",
    "DEFAULT_TAG",
    "DOCKER_HUB_API",
    "DOCKER_HUB_AUTH_KEY",
    "Reference",
    "parse_reference",
    "parse_tag",
    "split_domain",
]
