"""The kernel names Jupyter shows, before and after a cutover: notebooks save them, so they must not change.

A notebook keeps `metadata.kernelspec.name`, and Jupyter opens it with the kernel of that name,
or asks the user to pick one. Two sources give names. Static specs: the folder names of the
site's kernels folder, lowercased as jupyter_client does; a cutover rewrites what a spec runs,
never its folder, so their names are the same after it. And, where the site's hub uses
nb_conda_kernels (site.toml `nb_conda_kernels = true`), names derived from where the
environments of the installation behind `current` are, so a cutover to an installation whose
environments are missing, lack a kernel spec or sit elsewhere changes them. nb_conda_kernels'
rules (anaconda/nb_conda_kernels manager.py, reference/conda-formats.md section 8), with conda
run through `current` as the hub runs it:

- conda lists the base (`ROOT/current`), every environment of its envs/ and of the `envs_dirs`
  of its .condarc, in sorted order; one counts when it holds share/jupyter/kernels/*/kernel.json
- the base is `root`; an environment in a folder named envs that is not the base's, or whose
  name is taken already, is `<folder above that envs>-<env>`; a name still taken gets -2, -3 ...
- the kernel is `conda-env-<env>-<k>` (`conda-root-<k>` for the base), <k> being `py` for
  python2/python3, `r` for ir, else the spec's folder name lowercased; accents are dropped and
  any character but letters, digits and . _ - becomes _
- those names win over a static spec of the same name
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from condaqa.errors import ConfigError
from condaqa.inputs import CONDARC, load_yaml, read_text
from condaqa.kernels.specs import Kernel, load_kernel_json
from condaqa.site import Installation, Site

_INVALID = re.compile(r"[^a-zA-Z0-9._\-]")
_SHORT = {"python2": "py", "python3": "py", "ir": "r"}


@dataclass(frozen=True)
class Shown:
    """One kernel Jupyter lists under a name: what it runs and where it comes from."""

    name: str
    display_name: str
    environment: str  # the environment's folder name, "" for the base or an interpreter outside the envs
    where: str  # the static spec file, or the environment's path as conda lists it
    identity: tuple[str, ...]  # the same kernel before and after: its spec file, or its path and spec folder
    kin: tuple[str, ...]  # what a renamed kernel keeps: the environment it runs and its spec folder


@dataclass(frozen=True)
class Names:
    """Every name Jupyter shows with one installation behind `current`."""

    installation: str
    shown: dict[str, list[Shown]]  # name -> every kernel that takes it; the last one is the one shown
    environments: frozenset[str]  # folder names of all the environments conda lists, kernels or not


def shown_names(site: Site, installation: Installation, kernels: Sequence[Kernel]) -> Names:
    """The names Jupyter shows when `current` points to `installation`: the static specs `kernels`
    (find_kernels), then nb_conda_kernels'."""
    shown: dict[str, list[Shown]] = {}
    for kernel in kernels:
        what = kernel.environment or kernel.interpreter
        shown.setdefault(kernel.name, []).append(Shown(kernel.name, kernel.display_name, kernel.environment,
                                                       str(kernel.spec_file), ("spec", str(kernel.spec_file)),
                                                       ("spec", what)))
    environments: set[str] = set()
    if site.nb_conda_kernels:
        for found in _conda_kernels(site, installation, environments):
            shown.setdefault(found.name, []).append(found)
    return Names(installation.name, shown, frozenset(environments))


def continuity(site: Site, target: Installation, kernels: Sequence[Kernel]) -> list[str]:
    """What a cutover to `target` does to the names notebooks use now: one line per problem."""
    found = changes(shown_names(site, site.current_installation(), kernels), shown_names(site, target, kernels))
    return [f"kernel name {name} (notebooks use it) {words}" for name, words in found.items()]


def changes(before: Names, after: Names) -> dict[str, str]:
    """name -> how it vanishes, changes to another, collides or runs another kernel in `after`, for
    each name of `before` that does; in name order."""
    found = {}
    for name in sorted(before.shown):
        old, now = before.shown[name][-1], after.shown.get(name)
        if now is None:
            renamed = sorted(n for n, shown in after.shown.items() if n not in before.shown
                             and any(s.kin == old.kin for s in shown))
            if renamed:
                where = next(s.where for s in after.shown[renamed[0]] if s.kin == old.kin)
                found[name] = f"changes to {' or '.join(renamed)}: it comes from {where}, not {old.where}"
            else:
                found[name] = f"vanishes: {_why_gone(old, after)}"
        elif len(now) > len(before.shown[name]):
            found[name] = f"collides: {', '.join(s.where for s in now)} all take it; Jupyter shows only {now[-1].where}"
        elif now[-1].identity != old.identity:
            found[name] = f"now runs {now[-1].where} instead of {old.where}"
    return found


def _why_gone(old: Shown, after: Names) -> str:
    if old.identity[0] == "spec":
        return f"{old.where} is gone"
    folder = old.kin[2]
    if not old.environment:
        return f"the base of {after.installation} has no share/jupyter/kernels/{folder}/kernel.json"
    if old.environment not in after.environments:
        return f"{old.environment} is not in {after.installation}"
    return f"{old.environment} in {after.installation} has no share/jupyter/kernels/{folder}/kernel.json"


def _conda_kernels(site: Site, installation: Installation, environments: set[str]) -> list[Shown]:
    """nb_conda_kernels' kernels of `installation` behind `current`, in its order; fills `environments`."""
    base = str(site.current_link)
    on_disk = {base: installation.path}
    on_disk.update({f"{base}/envs/{env}": installation.env_prefix(env) for env in installation.environments()})
    for folder in _envs_dirs(installation):
        for prefix in sorted(_listed(site, installation, folder).glob("*/conda-meta/history")):
            on_disk.setdefault(f"{folder}/{prefix.parent.parent.name}", prefix.parent.parent)
    environments.update(Path(p).name for p in on_disk if p != base)
    names: dict[str, str] = {}
    build_dir = os.path.join(base, "conda-bld", "")
    for listed in sorted(on_disk):
        if listed.startswith(build_dir):
            continue
        names[_env_name(listed, base, names)] = listed
    found = []
    for env_name, listed in names.items():
        for spec_file in sorted((on_disk[listed] / "share" / "jupyter" / "kernels").glob("*/kernel.json")):
            try:
                spec = load_kernel_json(spec_file)
            except ConfigError:  # nb_conda_kernels logs a spec it cannot load and leaves it out
                continue
            folder = spec_file.parent.name.lower()
            kind = "root" if listed == base else f"env-{env_name}"
            name = _clean(f"conda-{kind}-{_SHORT.get(folder, folder)}")
            display = str(spec.get("display_name", ""))
            display = "Python" if display.startswith("Python") else display
            environment = "" if listed == base else Path(listed).name
            found.append(Shown(name, f"{display} [conda env:{env_name}]", environment, listed,
                               ("conda", listed, folder), ("conda", environment, folder)))
    return found


def _env_name(listed: str, base: str, taken: dict[str, str]) -> str:
    if listed == base:
        return "root"
    parent, name = os.path.split(listed)
    if os.path.basename(parent) == "envs" and (parent != f"{base}/envs" or name in taken):
        name = f"{os.path.basename(os.path.dirname(parent))}-{name}"
    if name in taken:
        first = name
        name = next(n for n in (f"{first}-{i}" for i in range(2, len(taken) + 3)) if n not in taken)
    return name


def _clean(name: str) -> str:
    if not name.isascii():
        name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return _INVALID.sub("_", name)


def _envs_dirs(installation: Installation) -> list[str]:
    """The absolute `envs_dirs` (or its alias `envs_path`) of the installation's .condarc."""
    condarc = installation.path / ".condarc"
    try:
        data = load_yaml(read_text(condarc, CONDARC, ConfigError), str(condarc), ConfigError)
    except FileNotFoundError:
        return []
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ConfigError(f"{condarc}: not a .condarc: a mapping of settings is expected")
    folders = []
    for key in ("envs_dirs", "envs_path"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{condarc}: {key} must be a list of folders, got {str(value)[:80]}")
        folders += [os.path.normpath(v) for v in value if os.path.isabs(v)]
    return folders


def _listed(site: Site, installation: Installation, folder: str) -> Path:
    """Where a folder conda names through `current` (or ROOT/envs) is once `installation` is behind it."""
    for link, real in ((site.current_link, installation.path), (site.envs_link, installation.envs_dir)):
        if folder == str(link) or folder.startswith(f"{link}/"):
            return real / os.path.relpath(folder, link)
    return Path(folder)
