"""Version of the distribution, and the tag of the step image that goes with it."""

from __future__ import annotations

__version__ = "0.1.0"
#: Bumped when step-image/ changes, so clusters never run a stale step image under an old tag.
STEP_IMAGE_TAG = "0.1.0"
