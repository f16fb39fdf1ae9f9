"""JustStorage: an internal, content-addressed object store."""

__all__ = ["__version__"]

__version__ = "0.1.0"
