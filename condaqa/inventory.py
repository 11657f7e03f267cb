"""The inventory of `current`: every environment with the facts an administrator triages by."""

from __future__ import annotations

import grp
import os
import pwd
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from condaqa.kernels.specs import find_kernels
from condaqa.site import Site
from condaqa.usage.evidence import EnvUsage


@dataclass(frozen=True)
class EnvFacts:
    name: str
    size: int
    user: str
    group: str
    modified: float
    kernels: tuple[str, ...]

    def comment(self) -> str:
        kernels = f", kernel {', '.join(self.kernels)}" if self.kernels else ""
        day = time.strftime("%Y-%m-%d", time.localtime(self.modified))
        return f"{human_size(self.size)}, {self.user}:{self.group}, modified {day}{kernels}"


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _tree_size(path: Path) -> int:
    """Bytes in the tree, each inode counted once (conda hard-links files from pkgs/)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _name(lookup: Callable[[int], Sequence[Any]], ident: int) -> str:
    try:
        return str(lookup(ident)[0])
    except KeyError:
        return str(ident)


def inventory(site: Site) -> list[EnvFacts]:
    installation = site.installation(site.current_name)
    kernels_by_env: dict[str, list[str]] = {}
    live = {site.current_name, installation.name, "envs"}
    for kernel in find_kernels(site):
        if kernel.environment and kernel.installation in live:
            kernels_by_env.setdefault(kernel.environment, []).append(kernel.name)
    facts = []
    for env in installation.environments():
        prefix = installation.env_prefix(env)
        st = prefix.stat()
        modified = max(st.st_mtime, (prefix / "conda-meta" / "history").stat().st_mtime)
        facts.append(
            EnvFacts(env, _tree_size(prefix), _name(pwd.getpwuid, st.st_uid), _name(grp.getgrgid, st.st_gid),
                     modified, tuple(kernels_by_env.get(env, ())))
        )
    return facts


def proposal(found: EnvUsage | None) -> tuple[bool, str]:
    """Whether `inventory --ini` proposes REPLICATE, and the evidence for its comment: seen running (now or in
    the sampler log), or a kernel spec runs it (the gate requires a kernel's environment to be replicated)."""
    if found is None:
        return False, "usage: unknown"
    seen = found.last_seen
    replicate = seen is not None or bool(found.kernel_specs)
    return replicate, f"usage: {found.verdict()} -> {'REPLICATE' if replicate else 'export'}"
