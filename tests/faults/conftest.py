"""The fault suite reuses the docker tests' helpers (real engine, unique image names)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docker"))
