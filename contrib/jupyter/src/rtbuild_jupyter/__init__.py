"""rtbuild-jupyter: a Jupyter kernel and the kernel gateway in runtime images."""

from .plugin import JupyterPlugin, JupyterSettings

__all__ = ["JupyterPlugin", "JupyterSettings"]
