"""condaqa: qualify a new shared conda installation, then cut over to it atomically."""

from condaqa.version import VERSION as __version__

__all__ = ["__version__"]
