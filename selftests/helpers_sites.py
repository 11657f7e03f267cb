"""Small synthetic sites under tmp_path for the lifecycle selftests, independent of the demo.

ROOT has two installations (v4.3 = current, v4.8 = qa), each with environments whose
bin/python is a venv-style link to this interpreter (pyvenv.cfg beside it), so
`ROOT/current/envs/<env>/bin/python -c "import <env>_mod"` really runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from condaqa.kernels.specs import find_kernels
from condaqa.lifecycle import audit
from condaqa.manifest import load_manifest
from condaqa.qualification import required, store
from condaqa.replication.stamp import write_stamp
from condaqa.site import Site, load_site
from condaqa.triage import triaged
from condaqa.vocab import Action, Category, Outcome

OLD, NEW = "v4.3", "v4.8"
ENVS = ("alpha", "beta")
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"


def make_site(tmp_path: Path, envs: tuple[str, ...] = ENVS, *, kernels: bool = True) -> Site:
    """A site with current -> v4.3, qa -> v4.8, envs -> current/envs, and (optionally) kernel specs.

    Kernels: `<env>-pinned` name v4.3's versioned path (cutover rewrites them), `<env>-current`
    goes through `current` (nothing to do).
    """
    base = tmp_path / "site"
    root = base / "conda"
    for name in (OLD, NEW):
        make_installation(root / name, envs)
    os.symlink(OLD, root / "current")
    os.symlink(NEW, root / "qa")
    os.symlink("current/envs", root / "envs")
    if kernels:
        for env in envs:
            python = f"{root}/{OLD}/envs/{env}/bin/python"
            write_kernel(root, f"{env}-pinned", python, env={"PATH": f"{root}/{OLD}/envs/{env}/bin:/usr/bin"})
            write_kernel(root, f"{env}-current", f"{root}/current/envs/{env}/bin/python")
    manifests = base / "manifests"
    manifests.mkdir()
    rows = "".join(f"{env} = REPLICATE\n" for env in envs)
    (manifests / "environments.ini").write_text(f"[environments]\n{rows}legacy = export\n", encoding="utf-8")
    toml = "".join(f'[{env}]\nimports = ["{env}_mod"]\n' for env in envs)
    (manifests / "environments.toml").write_text(toml, encoding="utf-8")
    (manifests / "site.toml").write_text('[site]\nroot = "../conda"\n', encoding="utf-8")
    return load_site(manifests / "site.toml", base=base)


def make_installation(path: Path, envs: tuple[str, ...]) -> None:
    for sub in ("conda-meta", "pkgs/cache", "bin"):
        (path / sub).mkdir(parents=True)
    (path / "conda-meta" / "history").touch()
    (path / ".condarc").write_text("channels: []\n", encoding="utf-8")
    (path / "envs").mkdir()
    for env in envs:
        make_env(path / "envs" / env, env)
    for folder in [path, *path.rglob("*")]:
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o755)


def make_env(prefix: Path, env: str) -> None:
    """A venv-style prefix: conda-meta/history, bin/python -> this interpreter, <env>_mod importable."""
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "history").touch()
    (prefix / "bin").mkdir()
    os.symlink(os.path.realpath(sys.executable), prefix / "bin" / "python")
    home = os.path.dirname(os.path.realpath(sys.executable))
    (prefix / "pyvenv.cfg").write_text(f"home = {home}\ninclude-system-site-packages = false\n", encoding="utf-8")
    site_packages = prefix / "lib" / PY / "site-packages"
    site_packages.mkdir(parents=True)
    (site_packages / f"{env}_mod.py").write_text("VALUE = 1\n", encoding="utf-8")


def write_kernel(root: Path, name: str, python: str, env: dict[str, str] | None = None) -> Path:
    spec: dict[str, object] = {"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                               "display_name": name, "language": "python"}
    if env:
        spec["env"] = env
    path = root / "kernels" / name / "kernel.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return path


def qualify(site: Site, installation: str = NEW, outcome: Outcome = Outcome.PASSED,
            envs: tuple[str, ...] = ENVS) -> None:
    """Record every required check of each environment through the library, as the plugin does after
    running them: the environment stamped as built by condaqa, then each check's outcome."""
    kernels = find_kernels(site)
    for env in load_manifest(site.manifest):
        if env.name not in envs:
            continue
        stamp = write_stamp(site.root / installation / "envs" / env.name, env.name, "selftest", site.state_dir)
        store.record_build(site, installation, env, stamp, rebuilt=True, seconds=0.1)
        needed = required.required_checks(site, env, kernels, installation)
        for check in needed:
            failed = outcome is Outcome.FAILED and check == required.IMPORTS
            words = f"ImportError: no module named {env.name}_mod"
            found = triaged(Category.IMPORT_FAILED, env.name, words) if failed else None
            store.record(site, installation, env, check, outcome if check == required.IMPORTS else
                         Outcome.PASSED, build_id=stamp.build_id, required=needed, triage=found)


def audit_state(site: Site, start: str = OLD) -> str:
    """Where the audit log says `current` points: replay cutovers and rollbacks from `start`."""
    state = start
    for record in audit.records(site):
        if record["action"] in (Action.CUTOVER, Action.ROLLBACK):
            assert record["from"] == state, f"audit jumps from {state} to a record starting at {record['from']}"
            state = record["to"]
    return state


def kernel_paths(site: Site) -> dict[str, str]:
    """kernel name -> its interpreter path."""
    return {
        path.parent.name: json.loads(path.read_text(encoding="utf-8"))["argv"][0]
        for path in sorted(site.kernels_dir.glob("*/kernel.json"))
    }


def tree_state(root: Path, *, skip: str = "", folder_times: bool = False) -> dict[str, tuple[int, ...]]:
    """Every path below `root` (not following links), with its mode, and for files size and mtime.
    A folder's mtime says only that an entry changed, and the entries are here, unless one was made
    and removed again: `folder_times` keeps it, for what nothing may have written to at all.
    `skip`: a top-level entry left out."""
    state: dict[str, tuple[int, ...]] = {}
    folders = [str(root)]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # gone, or not a folder: as os.walk, nothing below it
            continue
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                if not (skip == entry.name and folder == str(root)):
                    state[entry.path] = (st.st_mode, st.st_mtime_ns) if folder_times else (st.st_mode,)
                    folders.append(entry.path)
            else:
                state[entry.path] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return state


def tree_listing(path: Path) -> list[str]:
    """Every path below `path`, to show that nothing was deleted."""
    return sorted(os.path.relpath(p, path) for p in tree_state(path))


def processes_with(marker: str) -> list[int]:
    """The live processes whose command line holds `marker` (zombies waiting to be reaped are not): how a
    test sees the processes of a sandbox, whose own PID namespace and read-only files tell it nothing."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            alive = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
            if entry.name.isdigit() and alive and marker in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


def state_digest(root: Path, *, skip: str = "") -> str:
    """One digest of tree_state(root): "absent" when there is nothing at `root`."""
    if not root.exists():
        return "absent"
    state = tree_state(root, skip=skip)
    return hashlib.sha256("\n".join(f"{path} {st}" for path, st in sorted(state.items())).encode()).hexdigest()
