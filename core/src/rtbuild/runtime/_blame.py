"""A failed build step of a runtime image, blamed on the runtime plugin that wrote it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rtbuild.errors import BuildFailedError

if TYPE_CHECKING:
    from rtbuild._framework.config import Config
    from rtbuild.runtime._compose import RuntimeComposition


def _words_of(text: str) -> str:
    return " ".join(text.split())


def step_owner(composition: RuntimeComposition, instruction: str) -> str | None:
    """The plugin whose group holds ``instruction`` (a step as the engine names it, its
    continuation lines joined), or None when no single plugin's does."""
    wanted = _words_of(instruction)
    owners: set[str] = set()
    for text in (composition.deps.dockerfile, composition.source.dockerfile):
        for section in text.split("\n# -- ")[1:]:  # "# -- NAME: dependencies|source"
            name, _, body = section.partition(": ")
            logical = body.partition("\n")[2].replace("\\\n", " ").split("\n")
            if wanted and wanted in {_words_of(line) for line in logical}:
                owners.add(name)
    return owners.pop() if len(owners) == 1 else None


def _base_missing(exc: BuildFailedError, base: str, config: Config | None) -> bool:
    """Whether the build failed on loading ``base`` (not in a RUN or COPY step) that its
    registry, asked again now, says it does not have."""
    step = exc.step or ""
    if config is None or step.startswith(("RUN", "COPY", "ADD")) or base not in f"{step} {exc.message}":
        return False
    from rtbuild.runtime._basedigest import missing_from_registry

    return missing_from_registry(base, config)


@contextlib.contextmanager
def steps_of_plugins(composition: RuntimeComposition, base: str, config: Config | None = None) -> Iterator[None]:
    """A RUN step that failed is blamed on the runtime plugin that wrote it: the hint said
    to 'fix the command in the Dockerfile', one rtbuild composed and the user never saw.

    With ``config`` (the dependency stage, the one ``FROM base``), a failure to load a
    base its registry does not have is blamed on the base: the builder's hint said to
    'build or load the base image locally first (rtbuild exists IMAGE --pull)', which fails
    the same way."""
    try:
        yield
    except BuildFailedError as exc:
        step = exc.step or ""
        if _base_missing(exc, base, config):
            exc.blame = f"base image {base}"
            exc.hint = (
                f"{base} is not in its registry (HTTP 404: no such repository or tag): check the base's name"
                " and tag (--base, or [sandbox] base_container_image / RTBUILD_BASE_CONTAINER_IMAGE), or push"
                " it there first"
            )
            raise
        owner = step_owner(composition, step) if step.startswith("RUN") else None
        if owner is not None and "fix the command in the Dockerfile" in (exc.hint or ""):
            exc.blame = composition.origins.get(owner, f"runtime plugin {owner}")
            exc.hint = (
                f"this RUN step is runtime plugin {owner}'s (rtbuild composed the Dockerfile from the"
                f" selected plugins): its output above says why. The base image {base} may lack what the"
                " plugin needs (choose another --base), or its settings need a change; the full log has every line"
            )
        raise


__all__ = ["step_owner", "steps_of_plugins"]
