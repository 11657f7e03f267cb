"""What users keep in their homes that names an installation by its versioned path (ROOT/v4.3/...).

Such a path goes on working after a cutover (nothing is deleted then) and breaks only when the
installation is retired, long after anyone remembers why: a user's own kernel spec, a line of
~/.conda/environments.txt, `envs_dirs` or `pkgs_dirs` in a user's .condarc. condaqa reads these
files (bounded, text only, regular files only, never writing) and says what to change: the
same path through `current`, which follows every cutover.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from condaqa import inputs
from condaqa.errors import CondaqaError, ConfigError
from condaqa.inputs import CONDARC, load_yaml, read_text
from condaqa.kernels.specs import load_kernel_json
from condaqa.site import Site

KERNEL_SPECS = Path(".local/share/jupyter/kernels")
ENVIRONMENTS_TXT = Path(".conda/environments.txt")
CONDARCS = (Path(".condarc"), Path(".conda/.condarc"), Path(".config/conda/.condarc"))
CONDARC_KEYS = ("envs_dirs", "envs_path", "pkgs_dirs")


@dataclass(frozen=True)
class Leftover:
    """One value in one user's file that names a path which goes away with an installation."""

    home: Path
    file: Path
    what: str  # "kernel spec hlink argv[0]", "environments.txt entry", ".condarc envs_dirs entry"
    names: str  # the value as the file has it
    fix: str

    def line(self) -> str:
        return f"{self.home}: {self.file}: {self.what} names {self.names}; {self.fix}"


@dataclass
class Audit:
    found: list[Leftover] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # files and homes that could not be read, and why


def group_homes(site: Site) -> list[Path]:
    """The readable home folders of the users in the site root's group (members and primary group)."""
    gid = site.root.stat().st_gid
    try:
        members = set(grp.getgrgid(gid).gr_mem)
    except KeyError:  # a group id with no name: only users whose primary group it is
        members = set()
    homes = {Path(u.pw_dir) for u in pwd.getpwall() if u.pw_gid == gid or u.pw_name in members}
    return sorted(h for h in homes if h.is_dir() and os.access(h, os.R_OK | os.X_OK))


def audit_homes(site: Site, homes: Sequence[Path], doomed: Sequence[Path]) -> Audit:
    """Every value in `homes` naming a path inside one of `doomed` (installations, or a package cache)."""
    audit = Audit()
    patterns = [(_pattern(path), str(_through_current(site, path))) for path in doomed]

    def names(value: str) -> str | None:
        """`value` with the doomed path put through current, or None if it names none of them."""
        for pattern, moved in patterns:
            if pattern.search(value):
                return pattern.sub(moved.replace("\\", "\\\\"), value)  # a literal replacement
        return None

    for home in homes:
        if not (home.is_dir() and os.access(home, os.R_OK | os.X_OK)):
            audit.unreadable.append(f"{home}: not a home folder you can read")
            continue
        for reader in (_kernel_specs, _environments_txt, _condarcs):
            try:
                for file, what, value in reader(home):
                    moved = names(value)
                    if moved is not None:
                        audit.found.append(Leftover(home, file, what, value, _fix(file, what, moved)))
            except CondaqaError as exc:
                audit.unreadable.append(str(exc))
            except FileNotFoundError:  # removed while it was being read: nothing left to name anything
                continue
    return audit


Values = Iterator[tuple[Path, str, str]]  # (file, what in it, the value)


def _kernel_specs(home: Path) -> Values:
    folder = home / KERNEL_SPECS
    try:
        spec_files = sorted(folder.glob("*/kernel.json"))
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot list the kernel specs: {exc.strerror}") from None
    for spec_file in spec_files:
        if not _regular(spec_file):
            continue
        spec = load_kernel_json(spec_file)
        name = spec_file.parent.name
        argv, env = spec.get("argv", []), spec.get("env", {})
        for i, arg in enumerate(argv if isinstance(argv, list) else []):
            if isinstance(arg, str):
                yield spec_file, f"kernel spec {name} argv[{i}]", arg
        for key, value in env.items() if isinstance(env, dict) else ():
            if isinstance(value, str):
                yield spec_file, f"kernel spec {name} env {key}", value


def _environments_txt(home: Path) -> Values:
    path = home / ENVIRONMENTS_TXT
    if _regular(path):
        for line in read_text(path, inputs.ENVIRONMENTS_TXT, ConfigError).splitlines():
            if line.strip():
                yield path, "environments.txt entry", line.strip()


def _condarcs(home: Path) -> Values:
    for name in CONDARCS:
        path = home / name
        if not _regular(path):
            continue
        data = load_yaml(read_text(path, CONDARC, ConfigError), str(path), ConfigError)
        for key in CONDARC_KEYS:
            value = data.get(key) if isinstance(data, dict) else None
            for entry in value if isinstance(value, list) else [value]:
                if isinstance(entry, str):
                    yield path, f".condarc {key} entry", entry


def _regular(path: Path) -> bool:
    """A regular file (through links): never a FIFO or a device a user planted to hold condaqa up."""
    try:
        return path.is_file()
    except OSError:
        return False


def _pattern(path: Path) -> re.Pattern[str]:
    # The path at the start of the value or after : = or a space (PATH-like values), and ending at / : or the end,
    # so ROOT/v4.30 is never taken for ROOT/v4.3.
    return re.compile(r"(?<![^:=\s])" + re.escape(str(path)) + r"(?=[/:]|$)")


def _through_current(site: Site, path: Path) -> Path:
    """ROOT/<installation>/rest as ROOT/current/rest."""
    parts = path.relative_to(site.root).parts
    return site.current_link.joinpath(*parts[1:])


def _fix(file: Path, what: str, moved: str) -> str:
    if what.startswith("kernel spec"):
        return f"change it to {moved}, or remove {file.parent} if the kernel is not used any more"
    if what.startswith("environments.txt"):
        return f"change the line to {moved}, or delete it"
    return f"change it to {moved}"
