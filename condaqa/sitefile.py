"""Which site.toml a command or a pytest run uses, and where the suite that qualifies it lies, decided
without importing anything heavy: pytest loads condaqa's entry point in every project of the venv, and
this is all it needs until a site is active."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SITE = Path("manifests") / "site.toml"
SITE_ENV_VAR = "CONDAQA_SITE"
SUITE = Path(__file__).resolve().parent / "suite"  # the shipped qualification suite, condaqa.suite


def site_file(explicit: str | os.PathLike[str] | None = None, base: Path | None = None) -> Path:
    """Which site.toml to use: the argument, else $CONDAQA_SITE, else manifests/site.toml under `base`."""
    chosen = explicit or os.environ.get(SITE_ENV_VAR) or (base or Path.cwd()) / DEFAULT_SITE
    return Path(chosen).expanduser().resolve()
