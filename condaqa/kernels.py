"""Jupyter kernel specs under ROOT/<kernels>: find them and map each to the environment it runs."""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

from condaqa import atomic
from condaqa.errors import ConfigError
from condaqa.site import Site


@dataclass(frozen=True)
class Kernel:
    name: str
    spec_file: Path
    argv: tuple[str, ...]
    installation: str  # the path component after ROOT: "current", "v4.3", ... or "" if outside ROOT
    environment: str  # the envs/<name> the interpreter lives in, or "" for a base or foreign prefix

    @property
    def interpreter(self) -> str:
        return self.argv[0] if self.argv else ""


def find_kernels(site: Site) -> list[Kernel]:
    """Kernel specs as jupyter_client sees them in the site's kernels folder."""
    if not site.kernels_dir.is_dir():
        return []
    manager = KernelSpecManager(kernel_dirs=[str(site.kernels_dir)])
    kernels = []
    for name, resource_dir in sorted(manager.find_kernel_specs().items()):
        spec_file = Path(resource_dir) / "kernel.json"
        try:
            argv = tuple(json.loads(spec_file.read_text(encoding="utf-8"))["argv"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{spec_file}: not a valid kernel spec: {exc}") from None
        installation, environment = locate(site.root, argv[0] if argv else "")
        kernels.append(Kernel(name, spec_file, argv, installation, environment))
    return kernels


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
    return _path_pattern(installation).search(spec_file.read_text(encoding="utf-8")) is not None


def rewrite_kernel(spec_file: Path, old: Path, new: Path) -> bool:
    """Point every path under installation `old` in argv and env at `new`, in one atomic replace.

    Calling it again with `old` and `new` swapped restores the spec; False means nothing named
    `old`, so cutover, rollback and their crash recovery can repeat it safely.
    """
    try:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{spec_file}: not a valid kernel spec: {exc}") from None
    pattern = _path_pattern(old)

    def moved(value: object) -> object:
        return pattern.sub(lambda _: str(new), value) if isinstance(value, str) else value

    changed = dict(spec)
    changed["argv"] = [moved(a) for a in spec.get("argv", [])]
    if isinstance(spec.get("env"), dict):
        changed["env"] = {k: moved(v) for k, v in spec["env"].items()}
    if changed == spec:
        return False
    before = spec_file.stat()
    atomic.write_text(spec_file, json.dumps(changed, indent=1) + "\n")
    with contextlib.suppress(OSError):  # keep the owner and group an admin gave the spec, where allowed
        os.chown(spec_file, before.st_uid, before.st_gid)
    return True


def _path_pattern(installation: Path) -> re.Pattern[str]:
    # ROOT/v4.3 followed by /, :, a JSON quote or the end, so ROOT/v4.30 is never taken for ROOT/v4.3.
    return re.compile(re.escape(str(installation)) + r"(?=[/:\"]|$)")
