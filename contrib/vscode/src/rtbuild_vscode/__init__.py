"""rtbuild-vscode: an openvscode-server runtime plugin (see docs/plugins/vscode.md)."""

from __future__ import annotations

__version__ = "0.1.0"
