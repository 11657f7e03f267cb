"""condaqa: qualify a new shared conda installation, then cut over to it atomically."""

__version__ = "0.1.0"
