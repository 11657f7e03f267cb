"""One exception root, so the CLI and the plugin can turn any of them into a clear message."""

from __future__ import annotations

from condaqa.vocab import Stage


class CondaqaError(Exception):
    """A problem the user can act on; the message says what and where."""

    exit_code = 2
    notes: tuple[str, ...] = ()  # what the command settled before it failed (a killed cutover finished), said first


class ConfigError(CondaqaError):
    """site.toml, environments.ini/.toml or another input file is wrong."""


class SiteError(CondaqaError):
    """The site on disk is not in the shape condaqa needs, or an action would leave it."""


class PrefixError(CondaqaError):
    """An environment prefix cannot be read."""


class SpecError(CondaqaError):
    """An environment spec file is not a valid conda environment file."""


class LockHeld(CondaqaError):
    """Another condaqa action holds a lock this one needs; the message names the holder."""


class BuildError(CondaqaError):
    """An environment could not be built; `log` points at the details."""

    exit_code = 1

    def __init__(self, message: str, *, stage: Stage, log: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.log = log


class CutoverError(CondaqaError):
    """A cutover, rollback or retire was refused or failed safely."""
