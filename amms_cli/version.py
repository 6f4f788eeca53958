"""The version of amms: the one place it is written (pyproject.toml reads it from here), importable
from every layer without importing the rest of the package."""

__version__ = "0.1.0"
