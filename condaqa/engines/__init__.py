"""How an environment is built in an installation: one engine per module, picked by name."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, TextIO

from condaqa.errors import ConfigError
from condaqa.plan import BuildPlan
from condaqa.site import Installation, Site

ENGINES = {
    "rattler": "condaqa.engines.rattler",
    "conda": "condaqa.engines.conda",
}


class Engine(Protocol):
    """Creates the conda part of an environment; build.py runs pip and post steps after it."""

    def create(self, site: Site, installation: Installation, plan: BuildPlan, prefix: Path, log: TextIO) -> None: ...

    def add(self, site: Site, installation: Installation, env: str, prefix: Path, spec: str, log: TextIO) -> None:
        """Install one more conda package into the created environment, changing nothing already there."""
        ...


def get_engine(name: str) -> Engine:
    try:
        module = ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}") from None
    return importlib.import_module(module).ENGINE
