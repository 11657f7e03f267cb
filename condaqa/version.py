"""condaqa's version, as its installed metadata says (pyproject.toml is the one place it is written)."""

from importlib.metadata import version

VERSION = version("condaqa")
