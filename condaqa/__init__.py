"""condaqa: qualify a new shared conda installation, then cut over to it atomically."""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`condaqa.__version__`, read from the installed metadata when asked for: pytest imports this package in
    every project of the venv, and most never ask."""
    if name == "__version__":
        from condaqa.version import VERSION

        return VERSION
    raise AttributeError(f"module 'condaqa' has no attribute {name!r}")
