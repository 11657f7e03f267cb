"""Kernel specs under the site's kernels folder: read them, map each to the environment it runs, rewrite.

Only the site's own folder is read (never jupyter_client's search path, whose native
`python3` spec belongs to whatever Python runs condaqa), each kernel.json with the input
policy: bounded, text, a JSON object whose argv is a non-empty list of strings. The
environment a spec runs is the one whose python its argv names: as its first word, or
anywhere in it (`["/bin/sh", "-c", "exec ROOT/envs/x/bin/python -m ipykernel_launcher ..."]`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from condaqa import atomic
from condaqa.errors import ConfigError
from condaqa.inputs import KERNEL_SPEC, guard, name_problem, read_json, read_text
from condaqa.site import Site

_PYTHON = re.compile(r"/[^\s'\"`;|&<>()]*?/bin/python[0-9.]*(?![\w.])")


@dataclass(frozen=True)
class Kernel:
    name: str  # as Jupyter names it: the folder's name, lowercased
    spec_file: Path
    argv: tuple[str, ...]
    installation: str  # the path component after ROOT: "current", "v4.3", ... or "" if outside ROOT
    environment: str  # the envs/<name> its python lives in, or "" for a base or foreign prefix
    display_name: str = ""
    env: dict[str, str] = field(default_factory=dict, hash=False)
    python: str = ""  # the environment's python its argv names, else its first word

    @property
    def interpreter(self) -> str:
        return self.python or (self.argv[0] if self.argv else "")

    @property
    def folder(self) -> str:
        """The spec's folder name as on disk (HLINK and hlink are two specs Jupyter shows as one)."""
        return self.spec_file.parent.name


def find_kernels(site: Site) -> list[Kernel]:
    """Every <name>/kernel.json in the site's kernels folder, sorted by name."""
    if not site.kernels_dir.is_dir():
        return []
    kernels = []
    for folder in sorted(site.kernels_dir.iterdir()):
        spec_file = folder / "kernel.json"
        if not spec_file.exists():
            continue
        problem = name_problem(folder.name)
        if problem:
            raise ConfigError(f"{folder}: {folder.name[:80]!r} is not a kernel name: {problem}")
        kernels.append(read_kernel(site.root, folder.name.lower(), spec_file))  # Jupyter's names are lowercase
    return kernels


def read_kernel(root: Path, name: str, spec_file: Path) -> Kernel:
    spec = load_kernel_json(spec_file)
    argv = spec.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        raise ConfigError(f"{spec_file}: argv must be a non-empty list of strings, got {str(argv)[:80]}")
    env = spec.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ConfigError(f"{spec_file}: env must map names to strings")
    display = spec.get("display_name", name)
    python = python_of(root, argv)
    installation, environment = locate(root, python)
    return Kernel(name, spec_file, tuple(argv), installation, environment, str(display), dict(env), python)


def python_of(root: Path, argv: list[str]) -> str:
    """The python of an environment under `root` that `argv` runs: its first word, else the first such
    path anywhere in it (a spec that runs through a shell); else its first word."""
    candidates = [argv[0], *(found for word in argv for found in _PYTHON.findall(word))]
    return next((c for c in candidates if locate(root, c)[1]), argv[0])


def load_kernel_json(spec_file: Path) -> dict[str, object]:
    try:
        spec = read_json(spec_file, KERNEL_SPEC, ConfigError)
    except FileNotFoundError:
        raise ConfigError(f"{spec_file}: no such kernel spec") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{spec_file}: not a valid kernel spec: a JSON object is expected")
    return spec


def locate(root: Path, interpreter: str) -> tuple[str, str]:
    """(installation, environment) for ROOT/<installation>/envs/<environment>/bin/python."""
    try:
        parts = Path(interpreter).relative_to(root).parts
    except ValueError:
        return "", ""
    if len(parts) >= 3 and parts[1] == "envs":
        return parts[0], parts[2]
    if parts and parts[0] == "envs" and len(parts) >= 2:
        return "envs", parts[1]
    return (parts[0] if parts else ""), ""


def names_installation(spec_file: Path, installation: Path) -> bool:
    """Whether a kernel spec names a path inside `installation` (argv or env), not through a link."""
    text = read_text(spec_file, KERNEL_SPEC, ConfigError)
    return _path_pattern(installation).search(text) is not None


def writable_roots(site: Site) -> list[Path]:
    """Where condaqa may rewrite kernel specs: the site, and a kernels folder site.toml names elsewhere."""
    return [site.root, site.kernels_dir]


def rewrite_kernel(site: Site, spec_file: Path, old: Path, new: Path) -> bool:
    """Point every path under installation `old` in argv and env at `new`, in one atomic replace.

    Calling it again with `old` and `new` swapped restores the spec; False means nothing named
    `old`, so cutover, rollback and their crash recovery can repeat it safely.
    """
    guard(spec_file, writable_roots(site), "rewrite the kernel spec")
    spec = load_kernel_json(spec_file)
    changed = rewritten(spec, old, new)
    if changed == spec:
        return False
    before = spec_file.stat()
    atomic.write_text(spec_file, json.dumps(changed, indent=1) + "\n")
    with contextlib.suppress(OSError):  # keep the owner and group an admin gave the spec, where allowed
        os.chown(spec_file, before.st_uid, before.st_gid)
    return True


def rewritten(spec: dict[str, object], old: Path, new: Path) -> dict[str, object]:
    """`spec` with every path under installation `old` in argv and env pointing at `new`."""
    pattern = _path_pattern(old)

    def moved(value: object) -> object:
        return pattern.sub(lambda _: str(new), value) if isinstance(value, str) else value

    changed = dict(spec)
    argv = spec.get("argv", [])
    changed["argv"] = [moved(a) for a in argv] if isinstance(argv, list) else argv
    env = spec.get("env")
    if isinstance(env, dict):
        changed["env"] = {k: moved(v) for k, v in env.items()}
    return changed


def _path_pattern(installation: Path) -> re.Pattern[str]:
    # ROOT/v4.3 followed by /, :, a JSON quote or the end, so ROOT/v4.30 is never taken for ROOT/v4.3.
    return re.compile(re.escape(str(installation)) + r"(?=[/:\"]|$)")
