"""Build contexts, public helpers for builders: validation, ``.dockerignore``, hashing.

A builder that sends a context the way Docker does uses these to agree with the core on
which files are in it and what its digest is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtbuild._lazy import lazy_exports

if TYPE_CHECKING:
    from rtbuild.context._dockerignore import (
        Pattern,
        PatternMatcher,
        flavor_for_client,
        read_dockerignore,
        read_patterns,
    )
    from rtbuild.context._hashing import ContextHash, StatCache, hash_context, hash_file
    from rtbuild.context._stale import clear_stale_sync, mark_stale_sync, stale_sync_marker
    from rtbuild.context._validate import (
        check_one_dockerfile,
        context_digest,
        dockerfile_arg,
        dockerfile_args,
        resolved_inside,
        sent_with_context,
        validate_context,
        validate_context_dir,
    )

_NAMES = {
    "Pattern": "rtbuild.context._dockerignore",
    "PatternMatcher": "rtbuild.context._dockerignore",
    "read_dockerignore": "rtbuild.context._dockerignore",
    "read_patterns": "rtbuild.context._dockerignore",
    "flavor_for_client": "rtbuild.context._dockerignore",
    "ContextHash": "rtbuild.context._hashing",
    "StatCache": "rtbuild.context._hashing",
    "hash_context": "rtbuild.context._hashing",
    "hash_file": "rtbuild.context._hashing",
    "clear_stale_sync": "rtbuild.context._stale",
    "mark_stale_sync": "rtbuild.context._stale",
    "stale_sync_marker": "rtbuild.context._stale",
    "context_digest": "rtbuild.context._validate",
    "dockerfile_arg": "rtbuild.context._validate",
    "dockerfile_args": "rtbuild.context._validate",
    "check_one_dockerfile": "rtbuild.context._validate",
    "resolved_inside": "rtbuild.context._validate",
    "sent_with_context": "rtbuild.context._validate",
    "validate_context": "rtbuild.context._validate",
    "validate_context_dir": "rtbuild.context._validate",
}
__getattr__, __dir__ = lazy_exports(__name__, _NAMES)
__all__ = [
    "ContextHash",
    "Pattern",
    "PatternMatcher",
    "StatCache",
    "check_one_dockerfile",
    "clear_stale_sync",
    "context_digest",
    "dockerfile_arg",
    "dockerfile_args",
    "flavor_for_client",
    "hash_context",
    "hash_file",
    "mark_stale_sync",
    "read_dockerignore",
    "read_patterns",
    "resolved_inside",
    "sent_with_context",
    "stale_sync_marker",
    "validate_context",
    "validate_context_dir",
]
