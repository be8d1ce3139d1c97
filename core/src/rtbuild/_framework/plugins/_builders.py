"""Which installed builders can be used: each one's class imported (never created).

Listing builders needs no import (the rows come from metadata), so ``rtbuild plugins``
listed one whose module fails to import as ``available`` while ``rtbuild builders`` said
``failed``, and the 'not recognised, choose one of' message offered it as a choice.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from rtbuild.errors import AgentRuntimeBuildError

if TYPE_CHECKING:
    from rtbuild._framework.plugins import RtbuildPluginManager
    from rtbuild.builder import RuntimeBuilder


def builder_classes(pm: RtbuildPluginManager) -> dict[str, type[RuntimeBuilder] | None]:
    """Each installed builder's class by name; ``None`` for one that failed to import or is
    no usable class (its row is then ``failed``, with why) or whose name two distributions
    claim (``conflict``)."""
    classes: dict[str, type[RuntimeBuilder] | None] = {}
    for row in pm.builder_rows():
        if row.name in classes:  # a conflicting name's second row
            continue
        classes[row.name] = None
        if row.status == "conflict":
            continue
        with contextlib.suppress(AgentRuntimeBuildError):  # the row says why
            classes[row.name] = pm.builder_class(row.name)
    return classes


def failed_builders(pm: RtbuildPluginManager) -> dict[str, str]:
    """Installed builders that cannot be selected because their class fails to import (or
    is unusable), with the first line of why: for the 'not recognised' message (an error
    path, so importing each one costs nothing that matters)."""
    builder_classes(pm)
    return {
        row.name: (row.error or "failed to import").splitlines()[0]
        for row in pm.builder_rows()
        if row.status == "failed"
    }


__all__ = ["builder_classes", "failed_builders"]
