"""Creating installations side by side under the site root, and retiring old ones."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from condaqa import atomic, audit, cutover
from condaqa.permissions import match_group
from condaqa.errors import CutoverError, SiteError
from condaqa.kernels import find_kernels, names_installation
from condaqa.site import Site


def condarc_text(site: Site) -> str:
    """The .condarc of a new installation: the site's channels in priority order, no defaults."""
    return yaml.safe_dump({"channels": site.channel_urls(), "channel_priority": "strict"}, sort_keys=False)


def create_bare(site: Site, name: str) -> Path:
    """An empty installation managed by the rattler engine: conda-meta, envs/, pkgs/, .condarc."""
    target = _new_target(site, name)
    for sub in ("conda-meta", "envs", "pkgs", "bin"):
        (target / sub).mkdir(parents=True)
    (target / "conda-meta" / "history").touch()
    atomic.write_text(target / ".condarc", condarc_text(site))
    return target


def run_installer(site: Site, name: str, installer: Path) -> Path:
    """Run a Miniconda or Miniforge installer unattended into ROOT/NAME and give it the site's .condarc."""
    target = _new_target(site, name)
    if not installer.is_file():
        raise SiteError(f"{installer}: installer not found")
    # An activated environment's CONDA_*/PYTHON* variables would leak into the installer's own conda.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "PYTHON", "MAMBA", "_CE_"))}
    done = subprocess.run(
        ["bash", str(installer), "-b", "-p", str(target)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not (target / "conda-meta").is_dir():
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        left = f"; remove the partial {target} by hand before retrying" if target.exists() else ""
        raise SiteError(f"bash {installer} -b -p {target} failed (exit {done.returncode}): {tail}{left}")
    for sub in ("envs", "pkgs"):
        (target / sub).mkdir(exist_ok=True)
    atomic.write_text(target / ".condarc", condarc_text(site))
    return target


def new_installation(site: Site, name: str, installer: Path | None = None) -> list[str]:
    """Create ROOT/NAME (bare, or by an installer), match current's group permissions, point `qa` at it."""
    target = create_bare(site, name) if installer is None else run_installer(site, name, installer)
    current = site.link_target(site.current_name)
    if current is not None:
        match_group(site.root / current, target)
    with cutover.locked(site, f"condaqa new-installation {name}") as notes:
        before = site.link_target(site.qa_name)
        atomic.replace_symlink(site.qa, name)
        how = str(installer) if installer is not None else "bare"
        audit.append(site, {"action": "new-installation", "installation": name, "installer": how, "qa_before": before})
    return notes


def retire(site: Site, name: str, *, pkgs_only: bool = False, yes: bool = False) -> list[str]:
    """Delete an old installation, or only its package cache, unless anything may still need it."""
    path = site.root / name
    doomed = path / "pkgs" if pkgs_only else path
    if not yes:
        raise CutoverError(f"retire deletes {doomed}; add --yes to confirm")
    with cutover.locked(site, f"condaqa retire {name}") as notes:
        _check_retirable(site, name, pkgs_only)
        if pkgs_only:
            for child in sorted(doomed.iterdir()) if doomed.is_dir() else []:
                _delete(child)
        else:
            # Gone from users' view in one rename, however long (or however partly) the deletion goes.
            doomed = path.with_name(f".{name}.retiring.{os.getpid()}")
            os.rename(path, doomed)
        audit.append(site, {"action": "retire", "installation": name, "pkgs_only": pkgs_only})
        if not pkgs_only:
            _delete(doomed)
    return notes


def _check_retirable(site: Site, name: str, pkgs_only: bool) -> None:
    path = site.root / name
    if "/" in name or name.startswith(".") or path.is_symlink() or not (path / "conda-meta").is_dir():
        raise CutoverError(f"{path}: not an installation folder under {site.root}")
    keep = {
        site.link_target(site.current_name): f"{site.current} points to it",
        site.link_target(site.qa_name): f"{site.qa} points to it",
        audit.rollback_target(site): "`condaqa rollback` would return to it",
    }
    if name in keep:
        raise CutoverError(f"refusing to retire {path}: {keep[name]}")
    kernels = [str(k.spec_file) for k in find_kernels(site) if names_installation(k.spec_file, path)]
    if kernels and not pkgs_only:
        raise CutoverError(f"refusing to retire {path}: kernel specs still name it: {', '.join(kernels)}")


def _delete(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        raise SiteError(f"{path}: could not delete everything ({exc}); remove the rest by hand") from None


def _new_target(site: Site, name: str) -> Path:
    """ROOT/NAME for a new installation, refusing an existing path or a name that is not a plain folder."""
    target = site.root / name
    if target.exists() or target.is_symlink():
        raise SiteError(f"{target}: already exists; choose another installation name")
    if "/" in name or name.startswith(".") or name in (site.current_name, site.qa_name, "envs"):
        raise SiteError(f"{name!r} is not a valid installation name")
    return target
