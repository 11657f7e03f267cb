"""Creating installations side by side under the site root, pointing `qa` at one, and retiring old ones."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from condaqa import atomic, locks, proc
from condaqa.errors import CutoverError, SiteError
from condaqa.inputs import guard, inside, name_problem
from condaqa.kernels import users
from condaqa.kernels.specs import find_kernels, names_installation
from condaqa.lifecycle import audit
from condaqa.lifecycle.journal import locked
from condaqa.permissions import match_group
from condaqa.replication.archive import verified
from condaqa.site import Installation, Site
from condaqa.vocab import Action

INSTALLER_TIMEOUT = 3600.0


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
    done = proc.run(["bash", str(installer), "-b", "-p", str(target)], environ=proc.foreign_environ(),
                    timeout=INSTALLER_TIMEOUT)
    if not done.ok or not (target / "conda-meta").is_dir():
        left = f"; remove the partial {target} by hand before retrying" if target.exists() else ""
        why = f"did not finish within {done.timeout:.0f}s" if done.timed_out else f"failed (exit {done.returncode})"
        tail = " | ".join(done.tail(3).splitlines())
        raise SiteError(f"bash {installer} -b -p {target} {why}: {tail}{left}")
    for sub in ("envs", "pkgs"):
        (target / sub).mkdir(exist_ok=True)
    atomic.write_text(target / ".condarc", condarc_text(site))
    return target


def new_installation(site: Site, name: str, installer: Path | None = None) -> list[str]:
    """Create ROOT/NAME (bare, or by an installer), match current's group permissions, point `qa` at it."""
    _site_exists(site)
    qa_before = site.link_target(site.qa_name)
    with locked(site, f"condaqa new-installation {name}") as notes, \
            locks.no_qualification(site, [qa_before] if qa_before else [], "move qa"):
        target = create_bare(site, name) if installer is None else run_installer(site, name, installer)
        current = site.link_target(site.current_name)
        if current is not None:
            match_group(site.root / current, target)
        atomic.replace_symlink(site.qa_link, name)
        how = str(installer) if installer is not None else "bare"
        audit.append(site, {"action": Action.NEW_INSTALLATION, "installation": name, "installer": how,
                            "qa_before": qa_before})
    return notes


def point_qa(site: Site, name: str) -> tuple[str | None, list[str]]:
    """Point `qa` at the existing installation ROOT/NAME (not the one current points to); audited."""
    _site_exists(site)
    problem = name_problem(name)
    path = site.root / name
    if problem or path.is_symlink() or not ((path / "conda-meta").is_dir() and (path / "envs").is_dir()):
        raise SiteError(f"{path}: not an installation folder under {site.root}" + (f" ({problem})" if problem else ""))
    if name == site.link_target(site.current_name):
        raise SiteError(f"{path} is what {site.current_link} points to; qa names the installation to qualify next")
    before = site.link_target(site.qa_name)
    with locked(site, f"condaqa qa {name}") as notes, \
            locks.no_qualification(site, [n for n in (before, name) if n], "move qa"):
        atomic.replace_symlink(site.qa_link, name)
        audit.append(site, {"action": Action.QA, "installation": name, "qa_before": before})
    return before, notes


def retire(site: Site, name: str, *, warn: Callable[[str], None], pkgs_only: bool = False,
           yes: bool = False) -> list[str]:
    """Delete an old installation, or only its package cache, unless anything may still need it.

    What users' homes still name inside it does not stop it (an admin cannot wait for everyone),
    but each one is `warn`ed about before anything is deleted, with what the user should change.
    """
    _site_exists(site)
    path = site.root / name
    doomed = path / "pkgs" if pkgs_only else path
    if not yes:
        raise CutoverError(f"retire deletes {doomed}; add --yes to confirm")
    with locked(site, f"condaqa retire {name}") as notes:
        _check_retirable(site, name, pkgs_only)
        guard(doomed, [site.root], "delete")
        for found in users.audit_homes(site, users.group_homes(site), [doomed]).found:
            warn(found.line())
        for env in (e for e in Installation(name, path).environments() if not verified(site, name, e)):
            gone = f"its packages leave with {doomed}" if pkgs_only else f"it goes with {name}"
            warn(f"{env} of {name} has no verified archive and {gone}: `condaqa archive --installation {name} --env "
                 f"{env}`, then `--verify {env}` with the same --installation, keep what rebuilds it")
        with locks.no_qualification(site, [name], f"retire {name}"):
            if pkgs_only:
                for child in sorted(doomed.iterdir()) if doomed.is_dir() else []:
                    _delete(child)
            else:
                # Gone from users' view in one rename, however long (or however partly) the deletion goes.
                doomed = path.with_name(f".{name}.retiring.{os.getpid()}")
                os.rename(path, doomed)
            audit.append(site, {"action": Action.RETIRE, "installation": name, "pkgs_only": pkgs_only})
            if not pkgs_only:
                _delete(doomed)
    return notes


def _site_exists(site: Site) -> None:
    if not site.root.is_dir():
        raise SiteError(f"{site.root}: the site root does not exist (site file {site.file}); condaqa creates "
                        "nothing there")


def _check_retirable(site: Site, name: str, pkgs_only: bool) -> None:
    path = site.root / name
    if name_problem(name) or path.is_symlink() or not (path / "conda-meta").is_dir():
        raise CutoverError(f"{path}: not an installation folder under {site.root}")
    keep = {
        site.link_target(site.current_name): f"{site.current_link} points to it",
        site.link_target(site.qa_name): f"{site.qa_link} points to it",
    }
    rollback = audit.rollback_target(site)
    if not pkgs_only:  # its package cache may go: its environments hold their own files (a link into pkgs/ is refused)
        keep.setdefault(rollback, "`condaqa rollback` would return to it; once it never should, `condaqa finalize` "
                        "drops the rollback point")
    if name in keep:
        raise CutoverError(f"refusing to retire {path}: {keep[name]}")
    kernels = [str(k.spec_file) for k in find_kernels(site) if names_installation(k.spec_file, path)]
    if kernels and not pkgs_only:
        raise CutoverError(f"refusing to retire {path}: kernel specs still name it: {', '.join(kernels)}")
    doomed = path / "pkgs" if pkgs_only else path
    reaching = _reaching(site, doomed, [n for n in dict.fromkeys([*keep, rollback]) if n])
    if reaching:
        more = f" and {len(reaching) - 5} more" if len(reaching) > 5 else ""
        raise CutoverError(f"refusing to retire {doomed}: still reached through a link from what production or a "
                           f"rollback uses: {', '.join(reaching[:5])}{more}")


def _reaching(site: Site, doomed: Path, kept: list[str]) -> list[str]:
    """What of the installations in `kept` (current, qa, the rollback point) and of the kernel specs
    resolves into `doomed`: an environment linked from another installation dangles once it goes."""
    found = [f"{link} ({site.root / name})" for name in kept for link in _links(site.root / name)
             if inside(link, [doomed])]
    for kernel in find_kernels(site):
        found += [f"{p} (kernel {kernel.name})" for p in (kernel.spec_file, Path(kernel.interpreter))
                  if inside(p, [doomed])]
    return found


def _links(top: Path) -> Iterator[Path]:
    """Every symbolic link under `top`, none followed."""
    folders = [str(top)]
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                yield Path(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)


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
    problem = name_problem(name)
    if problem or name in (site.current_name, site.qa_name, "envs"):
        raise SiteError(f"{name[:80]!r} is not a valid installation name" + (f": {problem}" if problem else ""))
    target = site.root / name
    if target.exists() or target.is_symlink():
        raise SiteError(f"{target}: already exists; choose another installation name")
    return target
