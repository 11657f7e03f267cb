"""What a build is asked to do: the input every engine takes, and what the idempotence hash covers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from condaqa.vocab import PlanSource, StepKind


@dataclass(frozen=True)
class PostStep:
    """Something installed after the environment is created: a pip install (git, archive, folder)
    or one conda package on its own (a legacy noarch package)."""

    kind: StepKind
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
    source: PlanSource = PlanSource.EXPORT
    notes: tuple[str, ...] = field(default=(), compare=False)

    def digest(self) -> str:
        """A stable hash of everything that changes the built environment."""
        data = asdict(self)
        data.pop("notes")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
