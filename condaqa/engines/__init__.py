"""How an environment is built in an installation: one engine per module, picked by name."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, TextIO, runtime_checkable

from condaqa.errors import ConfigError
from condaqa.plan.model import BuildPlan
from condaqa.site import Installation, Site

ENGINES = {
    "rattler": "condaqa.engines.rattler",
    "conda": "condaqa.engines.conda",
}


@runtime_checkable
class Engine(Protocol):
    """Creates the conda part of an environment; build/replicate.py runs pip and post steps after it."""

    name: str

    def create(self, site: Site, installation: Installation, plan: BuildPlan, prefix: Path, log: TextIO) -> None:
        """Solve and link `plan.conda` into the new prefix, writing conda's history and records."""

    def add(self, site: Site, installation: Installation, env: str, prefix: Path, spec: str, log: TextIO) -> None:
        """Install one more conda package into the created environment, changing nothing already there."""

    def forget(self, site: Site, installation: Installation, prefix: Path) -> None:
        """Drop whatever the engine keeps about `prefix` once condaqa has removed it."""


def get_engine(name: str) -> Engine:
    try:
        module = importlib.import_module(ENGINES[name])
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}") from None
    engine = getattr(module, "ENGINE", None)
    if not isinstance(engine, Engine):
        raise ConfigError(f"{ENGINES[name]}.ENGINE is not an engine (create, add, forget)")
    return engine
