"""Seeing what rtbuild builds and keeping it tidy (issue 14): context inspection, step
profiles, the metrics report and prune. Private; the CLI commands and the public
re-exports in :mod:`rtbuild` are the way in."""
