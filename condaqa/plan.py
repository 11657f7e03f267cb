"""What a build is asked to do: the input every engine takes, and what the idempotence hash covers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class PostStep:
    """A pip install run after the environment is created (git URLs, legacy noarch packages)."""

    kind: str  # "pip" or "conda"
    requirement: str
    reason: str = ""


@dataclass(frozen=True)
class BuildPlan:
    env: str
    conda: tuple[str, ...]
    pip: tuple[str, ...] = ()
    pip_args: tuple[str, ...] = ()
    post: tuple[PostStep, ...] = ()
    channels: tuple[str, ...] = ()
    source: str = "export"  # export, override or history
    notes: tuple[str, ...] = field(default=(), compare=False)

    def digest(self) -> str:
        """A stable hash of everything that changes the built environment."""
        data = asdict(self)
        data.pop("notes")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
