"""Who owns each environment, and what each owner must hear about theirs, in plain words.

The owner is environments.toml's `owner`, else the user owning the prefix in current. For each
environment an owner gets: its verdict and category, the failed check's own last lines, the hint,
the packages whose versions change from current to qa, the kernel names that change, what the
cutover does to it, whether it is seen in use, and what they must do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name

from condaqa.errors import CondaqaError
from condaqa.manifest import Environment
from condaqa.prefix import read_prefix
from condaqa.replication.archive import archive_dir, verified
from condaqa.report import KernelRow, Row
from condaqa.site import Site
from condaqa.usage.evidence import Usage
from condaqa.usage.processes import user_name
from condaqa.vocab import Category, Verdict

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class OwnerEnv:
    env: str
    owner: str
    disposition: str
    verdict: str
    category: str
    first_error: str
    hint: str
    waiver: str
    qa_output: str
    current_output: str
    changes: tuple[str, ...]  # packages whose versions change from current to qa
    kernel_changes: tuple[str, ...]  # kernel names that change at the cutover
    at_cutover: str
    to_do: str
    usage: str  # in use now, last seen, or not seen
    in_use_now: bool = False


@dataclass
class Owner:
    name: str
    environments: list[OwnerEnv] = field(default_factory=list)

    @property
    def file_stem(self) -> str:
        """A file name for the owner's pages: their name with anything but letters, digits, `.`, `_`, `-` as `_`."""
        return _SAFE.sub("_", self.name).strip("._") or "unnamed"

    def summary(self) -> str:
        """A few lines for a chat message or a mail: one per environment, with what to do."""
        lines = [f"condaqa: your conda environments and the move to the new installation ({self.name})"]
        for e in self.environments:
            lines.append(f"- {e.env}: {e.verdict}{f' [{e.category}]' if e.category else ''}. {e.to_do}")
        return "\n".join(lines)


def owner_of(site: Site, env: Environment) -> str:
    if env.owner:
        return env.owner
    try:
        return user_name(site.current_installation().env_prefix(env.name).stat().st_uid)
    except OSError:
        return "unknown"


def version_changes(site: Site, env: str, installation: str) -> tuple[str, ...]:
    """Each package of the environment whose version differs between current and `installation`."""
    try:
        before = read_prefix(site.current_installation().env_prefix(env)).versions()
        qa_prefix = site.installation(installation).env_prefix(env)
        if not qa_prefix.is_dir():
            return ()
        after = read_prefix(qa_prefix).versions()
    except (CondaqaError, OSError):
        return ()
    moved = {name for name, version in before.items()
             if name.startswith("pip:") and after.get(canonicalize_name(name.removeprefix("pip:"))) == version}
    lines = [f"{name.removeprefix('pip:')} {before[name]}: now a conda package, was installed by pip"
             for name in sorted(moved)]
    lines += [f"{name}: {version} -> {after.get(name, 'not in the new installation')}"
              for name, version in sorted(before.items()) if after.get(name) != version and name not in moved]
    taken = {canonicalize_name(name.removeprefix("pip:")) for name in moved}
    return tuple(lines + [f"{name}: new, {version}" for name, version in sorted(after.items())
                          if name not in before and name not in taken])


def _at_cutover(site: Site, env: Environment, row: Row, installation: str) -> str:
    current = site.link_target(site.current_name) or site.current_name
    if not env.replicate:
        spec = os.path.join(site.specs_dir, f"{env.name}.yml")
        kept = (f"archived in {archive_dir(site, current, env.name)}, verified by a rebuild from it alone, and its "
                f"spec is kept in {spec}" if verified(site, current, env.name) else f"Its spec is kept in {spec}")
        return (f"exported only: it is not rebuilt in {installation}. {kept}; at the cutover it leaves "
                f"{site.current_link}/envs and stays in {current} until that installation is retired")
    if row.result == Verdict.PASSED:
        return f"rebuilt: after the cutover {site.current_link}/envs/{env.name} is its new build in {installation}"
    if row.waiver:
        return f"rebuilt, with its failure waived: {row.waiver}"
    return (f"rebuilt, but not qualified ({row.result}): the cutover waits for it (it is refused until this "
            "environment passes, unless an administrator overrides it)")


def _to_do(env: Environment, row: Row, in_use: str | None) -> str:
    if not env.replicate:
        if in_use:
            return (f"It is still used ({in_use}). If you need it after the cutover, ask the administrator to mark "
                    "it REPLICATE now; it will be rebuilt and tested. If not, nothing: its spec is kept.")
        return ("Nothing if you no longer need it. If you do, ask the administrator to mark it REPLICATE before "
                "the cutover.")
    if row.result == Verdict.PASSED:
        return ("Nothing. It was rebuilt and passed every check. After the cutover, run your work as usual; if "
                "anything breaks, tell the administrator (going back takes a minute).")
    if row.category == Category.ALREADY_BROKEN:
        return (f"It fails today already, in the installation everyone uses now, so the move did not cause it. "
                f"{row.hint} Fix it, or tell the administrator that you accept it (a waiver).")
    if row.result == Verdict.FAILED:
        return (f"It does not work in the new installation yet ({row.category}). {row.hint} Send the fix (or a "
                "corrected environment file) to the administrator, then it is tested again.")
    return (f"Nothing yet: it is {row.result}, so its checks have not all run on its latest build. The "
            f"administrator runs them (`pytest -k {env.name}`); you will get a new report.")


def owners(site: Site, manifest: Sequence[Environment], installation: str, rows: Sequence[Row],
           kernel_rows: Sequence[KernelRow], usage: Usage | None) -> list[Owner]:
    """Every owner with their environments, sorted by name."""
    by_row = {r.environment: r for r in rows}
    found: dict[str, Owner] = {}
    for env in manifest:
        row = by_row[env.name]
        owner = owner_of(site, env)
        used = usage.of(env.name) if usage else None
        seen = used.last_seen if used else None
        in_use = used.verdict() if used and seen is not None else None
        kernels = tuple(f"{k.name}: {k.name_change}" for k in kernel_rows
                        if k.environment == env.name and k.name_change != "-")
        found.setdefault(owner, Owner(owner)).environments.append(OwnerEnv(
            env.name, owner, str(env.disposition), row.result, row.category, row.first_error, row.hint, row.waiver,
            row.qa_output, row.current_output,
            version_changes(site, env.name, installation) if env.replicate else (), kernels,
            _at_cutover(site, env, row, installation), _to_do(env, row, in_use),
            used.verdict() if used else "not looked at (run `condaqa usage`)", bool(used and used.running)))
    return sorted(found.values(), key=lambda o: o.name)
