"""Make real conda packages and wheels on the spot, for the demo site and the benchmarks.

The packages are ordinary `.tar.bz2` conda packages (info/index.json, info/paths.json,
info/link.json for noarch python); py-rattler indexes, solves and links them exactly as it
would packages from a public channel. Wheels are ordinary PEP 427 wheels that pip installs.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import importlib.util
import json
import os
import py_compile
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from condaqa.demo.elf import is_elf, relative_runpath
from condaqa.rescue.repack import Member, pack

# The header conda-forge gives scripts of relocatable packages: the environment's own python runs them.
CHECKED = py_compile.PycInvalidationMode.CHECKED_HASH
TRAMPOLINE = "#!/bin/sh\n'''exec' \"$(dirname -- \"$0\")/python\" \"$0\" \"$@\"\n' '''\n"


@dataclass
class Package:
    name: str
    version: str
    build: str = "0"
    subdir: str = "noarch"
    depends: list[str] = field(default_factory=list)
    files: list[Member] = field(default_factory=list)  # written by rescue/repack.py, as rescued packages are
    noarch_python: bool = False
    entry_points: list[str] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"


def _paths_json(files: list[Member]) -> dict[str, object]:
    paths: list[dict[str, object]] = []
    for f in files:
        if f.symlink is not None:
            paths.append({"_path": f.path, "path_type": "softlink"})
        else:
            paths.append(
                {
                    "_path": f.path,
                    "path_type": "hardlink",
                    "sha256": hashlib.sha256(f.data).hexdigest(),
                    "size_in_bytes": len(f.data),
                }
            )
    return {"paths": paths, "paths_version": 1}


def index_json(pkg: Package) -> dict[str, object]:
    record: dict[str, object] = {
        "name": pkg.name,
        "version": pkg.version,
        "build": pkg.build,
        "build_number": 0,
        "depends": pkg.depends,
        "license": "BSD-3-Clause",
        "subdir": pkg.subdir,
        "timestamp": 1_700_000_000_000,
    }
    if pkg.noarch_python:
        record["noarch"] = "python"
    if pkg.subdir != "noarch":
        platform, _, arch = pkg.subdir.partition("-")
        record["platform"], record["arch"] = platform, {"64": "x86_64", "aarch64": "aarch64"}.get(arch, arch)
    return record


def write_package(channel: Path, pkg: Package) -> Path:
    """Write `pkg` into `channel/<subdir>/` and return the archive's path."""
    files = sorted(pkg.files, key=lambda f: f.path)
    info = [Member("info/index.json", json.dumps(index_json(pkg), indent=2).encode()),
            Member("info/paths.json", json.dumps(_paths_json(files), indent=2).encode()),
            Member("info/files", "".join(f.path + "\n" for f in files).encode())]
    if pkg.noarch_python:
        link = {"noarch": {"type": "python", "entry_points": pkg.entry_points}, "package_metadata_version": 1}
        info.append(Member("info/link.json", json.dumps(link).encode()))
    return pack(channel / pkg.subdir / pkg.filename, [*files, *info])


def python_package(subdir: str) -> Package:
    """A `python` package that is a venv-style link to the running interpreter.

    Its `bin/python` is a symlink to the real interpreter and `pyvenv.cfg` names the
    interpreter's home, so an environment that installs it gets its own `sys.prefix` and
    site-packages, exactly as a conda python would.
    """
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    version = ".".join(str(n) for n in sys.version_info[:3])
    short = f"{sys.version_info[0]}.{sys.version_info[1]}"
    cfg = (
        f"home = {base.parent}\n"
        "include-system-site-packages = false\n"
        f"version = {version}\n"
    ).encode()
    files = [
        Member("pyvenv.cfg", cfg),
        Member("bin/python", symlink=str(base)),
        Member(f"bin/python{short}", symlink="python"),
        Member(f"bin/python{sys.version_info[0]}", symlink="python"),
        Member(f"lib/python{short}/site-packages/README.txt", b"site-packages\n"),
    ]
    return Package("python", version, "0_venvlink", subdir, files=files)


def old_python_package(subdir: str, executable: Path, version: str) -> Package:
    """A `python` package of an old interpreter found on the machine (demo/pythons.py), made to get its own
    `sys.prefix` and site-packages as a conda python does: it holds the interpreter itself (_python_copy).

    Not a venv-style link (python_package's, for the demo's own python): python 2.7 ignores
    `pyvenv.cfg`, and conda 4.3 links a package's symlink to a file as a copy of that file, whose
    libpython then lies in an installation the sandbox does not show.
    """
    return _python_copy(subdir, executable, version)


# What an installation's standard library holds that a run of the interpreter does not need: its tests (test/
# and its packages' own), the site-packages of that installation, bytecode (written for the sources' mtimes
# there, which the package does not keep) and the static libpython (conda-forge ships it in a package of its own).
_TESTS = frozenset({"test", "tests", "idle_test"})
_NOT_STDLIB = ("*.pyc", "*.pyo", "*.a")


def _python_copy(subdir: str, executable: Path, version: str) -> Package:
    """A `python` package holding a copy of an interpreter: `bin/python2.7`, its libpython and its
    standard library less tests and site-packages, each binary's search path for libraries made
    `$ORIGIN`-relative (demo/elf.py) as conda-build leaves them.

    A virtualenv-style copy of the executable beside links into the installation's standard library
    would need that installation, and the sandbox shows a run only the site, the environment and what
    the environment's `bin/python` resolves to: never a path an environment names (a link's target, a
    `pyvenv.cfg` home), which would let any environment expose any host path. A self-contained
    package needs nothing outside the environment, and is what conda's own python packages are. Each
    costs the demo an archive of 11 MB (2.7) or 13 MB (3.6), 3 to 4 CPU-seconds of bz2 per build, and
    some 30 MB in each package cache, hard-linked from there into each environment.
    """
    major, minor = version.split(".")[:2]
    short = f"{major}.{minor}"
    installation = executable.parent.parent
    taken = [(f"bin/python{short}", executable)]
    for libpython in sorted((installation / "lib").glob(f"libpython{short}*.so.1.0")):  # none if linked statically
        taken.append((f"lib/{libpython.name}", libpython))
    stdlib = installation / "lib" / f"python{short}"
    for folder, dirs, names in os.walk(stdlib):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in _TESTS and (here != stdlib or d != "site-packages"))
        taken += [(f"lib/python{short}/{(here / n).relative_to(stdlib)}", here / n) for n in sorted(names)
                  if not any(fnmatch.fnmatch(n, pattern) for pattern in _NOT_STDLIB) and (here / n).is_file()]
    files = [_copied(where, path, str(installation)) for where, path in taken]
    files += [Member("bin/python", symlink=f"python{short}"), Member(f"bin/python{major}", symlink="python"),
              Member(f"lib/python{short}/site-packages/README.txt", b"site-packages\n")]
    return Package("python", version, "0_relocatable", subdir, files=files)


def _copied(where: str, path: Path, installation: str) -> Member:
    """The file at `path` of `installation`, as the package holds it at `where`."""
    data = path.read_bytes()
    if is_elf(data):
        data = relative_runpath(data, where, installation)
    return Member(where, data, executable=os.access(path, os.X_OK))


def wheel_to_package(wheel: Path, build: str = "pyh_0", depends: list[str] | None = None) -> Package:
    """Turn a pure-Python wheel into a noarch-python conda package, as conda-forge does."""
    name, version = wheel.name.split("-")[:2]
    files: list[Member] = []
    entry_points: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.endswith("/"):
                continue
            data = zf.read(member)
            files.append(Member("site-packages/" + member, data))
            if member.endswith(".dist-info/entry_points.txt"):
                entry_points = _console_scripts(data.decode())
    return Package(
        name.lower().replace("_", "-"),
        version,
        build,
        depends=depends or [],
        files=files,
        noarch_python=True,
        entry_points=entry_points,
    )


def python_build(pkg: Package, subdir: str) -> Package:
    """The python-specific build of a noarch-python package, bytecode included, the way the
    defaults channel builds pip and setuptools (`pip-X-py311_0`): conda links its .pyc files
    instead of compiling them in every environment, which is what makes such builds quick."""
    short = f"{sys.version_info[0]}.{sys.version_info[1]}"
    site_packages = f"lib/python{short}/site-packages/"
    files = [Member(site_packages + f.path.removeprefix("site-packages/"), f.data, f.symlink, f.executable)
             for f in pkg.files if f.path.startswith("site-packages/")]
    files += _bytecode(files)
    for line in pkg.entry_points:
        script, target = (part.strip() for part in line.split("=", 1))
        files.append(Member(f"bin/{script}", console_script(target), executable=True))
    upper = f"{sys.version_info[0]}.{sys.version_info[1] + 1}"
    return Package(pkg.name, pkg.version, f"py{short.replace('.', '')}_0", subdir,
                   depends=[f"python >={short},<{upper}", *(d for d in pkg.depends if d.split()[0] != "python")],
                   files=files)


def _bytecode(files: list[Member]) -> list[Member]:
    """Compiled with checked hashes: valid whatever mtimes the files get when linked."""
    out: list[Member] = []
    with tempfile.TemporaryDirectory() as scratch:
        for f in files:
            if not f.path.endswith(".py") or f.symlink is not None:
                continue
            source, compiled = Path(scratch) / "source.py", Path(scratch) / "out.pyc"
            source.write_bytes(f.data)
            try:
                py_compile.compile(str(source), cfile=str(compiled), dfile=f.path, doraise=True,
                                   invalidation_mode=CHECKED)
            except py_compile.PyCompileError:
                continue  # as conda skips what does not compile
            out.append(Member(importlib.util.cache_from_source(f.path), compiled.read_bytes()))
    return out


def console_script(target: str) -> bytes:
    """The script of a console entry point (`module:attr`), run by the environment's python."""
    module, _, attr = target.partition(":")
    head = attr.split(".")[0]
    body = f"import sys\nfrom {module} import {head}\nif __name__ == '__main__':\n    sys.exit({attr}())\n"
    return (TRAMPOLINE + body).encode()


def _console_scripts(text: str) -> list[str]:
    scripts: list[str] = []
    in_section = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            in_section = line == "[console_scripts]"
        elif in_section and "=" in line:
            name, target = (part.strip() for part in line.split("=", 1))
            scripts.append(f"{name} = {target}")
    return scripts


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_wheel(
    wheelhouse: Path, name: str, version: str, modules: dict[str, str], requires: list[str] | None = None
) -> Path:
    """Write a pure-Python wheel holding `modules` ({'pkg/__init__.py': source})."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires or [])
    top = sorted({path.split("/")[0].removesuffix(".py") for path in modules})
    contents = {path: src.encode() for path, src in modules.items()}
    contents[f"{info}/METADATA"] = metadata.encode()
    contents[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: condaqa\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    contents[f"{info}/top_level.txt"] = ("\n".join(top) + "\n").encode()
    record = [_record_line(path, data) for path, data in contents.items()]
    contents[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    target = wheelhouse / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as zf:
        for path, data in contents.items():
            info_ = zipfile.ZipInfo(path, date_time=time.gmtime(1_700_000_000)[:6])
            zf.writestr(info_, data)
    return target
