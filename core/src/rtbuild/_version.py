"""The version, as a constant so that ``rtbuild --version`` needs no metadata scan."""

__version__ = "0.1.0"
