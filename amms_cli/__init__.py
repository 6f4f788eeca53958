"""amms: Another Multi Model Server."""

__version__ = "0.1.0"
