"""The package's version (saved with every fit: a file from another version is refused)."""

__version__ = "0.2.0"
