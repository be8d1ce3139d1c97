"""Private framework internals: config, discovery, plugin manager, pipeline, locks, progress.

Nothing here is public API; ``rtbuild/__init__.py`` re-exports what users need.
"""
