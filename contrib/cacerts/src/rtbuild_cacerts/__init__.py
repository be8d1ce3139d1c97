"""rtbuild-cacerts: the host's CA bundle and proxy settings in runtime images."""

from .plugin import CACertsPlugin, CACertsSettings

__all__ = ["CACertsPlugin", "CACertsSettings"]
