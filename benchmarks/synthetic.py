"""Large synthetic sites for the benchmarks: real conda packages, real prefixes, realistic shapes.

Two kinds of site, each cached under benchmarks/.work/ (delete the folder to start over):

* `real_site(n)`: what the replication, qualification and scaling benchmarks run on. Channels
  of real `.tar.bz2` conda packages made with condaqa.demo.packages and indexed by py-rattler,
  a wheelhouse of real wheels, two installations side by side (`current` -> v1, `qa` -> v2)
  and n environments created in `current` by condaqa's rattler engine plus pip, exactly as
  the demo site is built. The site grows on demand: environment i is the same whatever n.
  `real_site(n, python="3.6")` is the same site on that interpreter of this machine, packaged
  self-contained as conda's `python` with its own bundled pip and setuptools, in a work folder
  of its own: the site real conda 4.3 can build (it misplaces noarch packages of python 3.10+).

* `records_site(n, m)`: what the export and collection benchmarks read. n environments of m
  conda packages whose conda-meta records are written directly, in the format py-rattler
  writes them (key order, 2-space indent, paths_data), with site-packages holding each
  package's module and dist-info folders and real pip distributions (METADATA, RECORD,
  INSTALLER, some direct_url.json). Linking 1,000 x 150 packages would take an hour while
  export and collection only read; a record of the same package is the same bytes in every
  environment, so identical records are hard links to one file.

Shapes are drawn like real ones:
* conda packages per environment: resampled from the published environment files of
  ../shared/corpus/exports (CORPUS_CONDA below: 4 to 157, median 36);
* pip sections: the same corpus: 19 of 29 environments have one, of 1 to 103 entries
  (CORPUS_PIP); the replication site caps a section at PIP_CAP entries from the local wheelhouse;
* files per package: log-normal, median 35, sigma 1.6, clipped to 3..6,000 (most conda-forge
  packages have tens of files; numpy ~900, pandas ~2,600, ncurses ~4,000); python itself
  carries PYTHON_FILES files in the records site;
* 60 % of packages are noarch-python libraries (a module and a dist-info in site-packages), the
  rest compiled libraries (lib/, include/, share/); ~1 in 10 come from a second, internal channel.

Run `python benchmarks/synthetic.py real 30 [--python 3.6]` or `... records 1000 150` to build one by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, log

from condaqa.demo.packages import (
    Package,
    old_python_package,
    python_package,
    wheel_to_package,
    write_package,
    write_wheel,
)
from condaqa.demo.pythons import Interpreter, find, missing_reason
from condaqa.engines import get_engine
from condaqa.engines.rattler import index_channel
from condaqa.lifecycle.installations import create_bare
from condaqa.plan.model import BuildPlan
from condaqa.replication.pip import pip_install
from condaqa.replication.replicate import pip_home
from condaqa.rescue.repack import Member
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Installation, Site, load_site
from condaqa.vocab import Stage

GENERATOR_VERSION = 5  # bump when the shapes change: cached sites of another version are rebuilt

CORPUS_CONDA = [6, 15, 41, 7, 42, 153, 58, 15, 36, 78, 55, 12, 23, 48, 38, 11, 26, 157, 59, 26, 19, 14, 4, 19,
                20, 21, 80, 135, 110]
CORPUS_PIP = [0, 1, 24, 0, 0, 0, 72, 0, 0, 0, 2, 5, 32, 55, 0, 0, 0, 2, 4, 57, 103, 3, 3, 3, 15, 91, 7, 14, 83]
FILES_MEDIAN, FILES_SIGMA, FILES_MIN, FILES_MAX = 35, 1.6, 3, 6000
PYTHON_FILES = 5000
PIP_CAP = 12
TEAMS = ("census", "nhis", "linkage", "survey", "geo", "ml", "health", "scratch", "kernel", "atus")
PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"
PLATFORM = None  # filled lazily: rattler.Subdir.current()


def platform_subdir() -> str:
    global PLATFORM
    if PLATFORM is None:
        import rattler

        PLATFORM = str(rattler.Subdir.current())
    return PLATFORM


def file_count(rng: random.Random) -> int:
    return max(FILES_MIN, min(FILES_MAX, int(rng.lognormvariate(_ln(FILES_MEDIAN), FILES_SIGMA))))


def _ln(x: float) -> float:
    import math

    return math.log(x)


def env_name(i: int) -> str:
    return f"{TEAMS[i % len(TEAMS)]}_{i:04d}"


@dataclass(frozen=True)
class Spec:
    """One package of the synthetic channel."""

    index: int
    kind: str  # "python" or "lib"
    versions: tuple[str, ...]
    files: int
    depends: tuple[int, ...]
    channel: str  # "main" or "internal"

    @property
    def name(self) -> str:
        return f"syn-{'py' if self.kind == 'python' else 'lib'}{self.index:03d}"

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")


def catalog(count: int, seed: int) -> list[Spec]:
    rng = random.Random(seed)
    specs = []
    for i in range(count):
        kind = "python" if rng.random() < 0.6 else "lib"
        versions = ("1.0.0", "1.1.0", "2.0.0")[: rng.choice((1, 1, 2, 3))]
        ndeps = min(i, rng.choice((0, 0, 1, 1, 2, 3)))
        deps = tuple(sorted(rng.sample(range(i), ndeps))) if ndeps else ()
        channel = "internal" if rng.random() < 0.1 else "main"
        specs.append(Spec(i, kind, versions, file_count(rng), deps, channel))
    return specs


def closure(specs: list[Spec], seeds: list[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(seeds)
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo.extend(specs[i].depends)
    return seen


def choose_packages(specs: list[Spec], target: int, rng: random.Random) -> set[int]:
    """Seeds whose dependency closure has about `target` packages."""
    chosen: set[int] = set()
    order = list(range(len(specs)))
    rng.shuffle(order)
    for i in order:
        if len(chosen) >= target:
            break
        grown = chosen | closure(specs, [i])
        if len(grown) <= target + 2:
            chosen = grown
    return chosen


def _source(spec: Spec, version: str, deps: list[Spec], k: int) -> str:
    return (
        f'"""{spec.name} {version}, module {k}: synthetic library of the condaqa benchmarks."""\n'
        f"VALUE = {k}\n\n\ndef describe():\n    return {spec.name!r} + ' ' + {version!r}\n"
    )


def _init_source(spec: Spec, version: str, deps: list[Spec]) -> str:
    imports = "".join(f"import {d.module}  # noqa: F401\n" for d in deps if d.kind == "python")
    return (
        f'"""{spec.name} {version}: synthetic library of the condaqa benchmarks."""\n'
        f"{imports}from . import core  # noqa: F401\n__version__ = {version!r}\n"
    )


def _layout(n: int, prefix: str, ext: str) -> list[str]:
    """n relative paths spread over sub-folders of about 25 files, like a real package tree."""
    return [f"{prefix}sub{j // 25:03d}/{'mod' if ext == '.py' else 'data'}_{j:04d}{ext}" for j in range(n)]


def write_synthetic_package(staging: Path, root: Path, spec: Spec, version: str, specs: list[Spec]) -> None:
    deps = [specs[d] for d in spec.depends]
    depends = ["python", *(d.name for d in deps)] if spec.kind == "python" else [d.name for d in deps]
    if spec.kind == "python":
        mod = spec.module
        files = {f"{mod}/__init__.py": _init_source(spec, version, deps),
                 f"{mod}/core.py": _source(spec, version, deps, 0)}
        extra = max(0, spec.files - 6)  # the dist-info holds 4 files
        py = extra * 3 // 4
        for k, rel in enumerate(_layout(py, f"{mod}/", ".py"), 1):
            files[rel] = _source(spec, version, deps, k)
        for rel in _layout(extra - py, f"{mod}/data/", ".txt"):
            files[rel] = f"{rel}\n" * 4
        wheel = write_wheel(staging, spec.name, version, files)
        write_package(root / spec.channel, wheel_to_package(wheel, depends=depends))
        wheel.unlink()
        return
    lib = spec.name.replace("-", "")
    pkg_files = [Member(f"lib/lib{lib}.so.{version}", (f"ELF {spec.name} {version}\n" * 16).encode()),
                 Member(f"lib/lib{lib}.so", symlink=f"lib{lib}.so.{version}")]
    rest = max(0, spec.files - 2)
    headers = rest // 2
    pkg_files += [Member(p, f"/* {p} */\n#define X_{i} {i}\n".encode())
                  for i, p in enumerate(_layout(headers, f"include/{lib}/", ".h"))]
    pkg_files += [Member(p, f"{p}\n".encode() * 3) for p in _layout(rest - headers, f"share/{lib}/", ".txt")]
    write_package(root / spec.channel,
                  Package(spec.name, version, "h0_0", platform_subdir(), depends=depends, files=pkg_files))


# -- the real site -----------------------------------------------------------------------------

REAL_SEED = 20261125
REAL_PACKAGES = 240
REAL_WHEELS = 120


@dataclass(frozen=True)
class RealEnv:
    name: str
    conda: tuple[str, ...]
    pip: tuple[str, ...]
    imports: tuple[str, ...] | None


def real_env(i: int, specs: list[Spec]) -> RealEnv:
    """Environment i of the real site: the same whatever the site's size."""
    rng = random.Random(REAL_SEED * 1000 + i)
    target = max(1, rng.choice(CORPUS_CONDA) - 2)  # python and pip are two of them
    chosen = choose_packages(specs, target, rng)
    conda = ["python", "pip"]
    for j in sorted(chosen):
        spec = specs[j]
        conda.append(f"{spec.name}={rng.choice(spec.versions)}" if rng.random() < 0.7 else spec.name)
    pip_count = min(PIP_CAP, rng.choice(CORPUS_PIP))
    pip = tuple(f"syn-pip{k:03d}==1.0.{k % 3}" for k in sorted(rng.sample(range(REAL_WHEELS), pip_count)))
    imports = None
    if rng.random() < 0.3:  # some owners name their key modules in environments.toml
        mods = [specs[j].module for j in sorted(chosen) if specs[j].kind == "python"]
        imports = tuple(rng.sample(mods, min(len(mods), rng.randint(1, 4))))
    return RealEnv(env_name(i), tuple(conda), pip, imports)


@dataclass(frozen=True)
class RealSite:
    work: Path  # benchmarks/.work/real, where the benchmarks run condaqa and pytest from (reports/ land there)
    root: Path  # the shared tree: channels, wheelhouse, v1, v2, current, qa
    envs: tuple[RealEnv, ...]

    @property
    def checks(self) -> Path:
        return self.work / "checks"

    def site_toml(self, n: int, start: int = 0, engine: str = "rattler") -> Path:
        """A site.toml whose manifest lists environments start..n-1 as REPLICATE, the others as export;
        qa's environments built by `engine` (condaqa's default, or "conda": qa's own bin/conda)."""
        manifests = self.work / "manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        tag = f"{start}-{n}" if start else f"{n}"
        ini = manifests / f"environments-{tag}.ini"
        lines = ["# condaqa benchmarks: synthetic site", "[environments]"]
        lines += [f"{e.name} = {'REPLICATE' if start <= k < n else 'export'}" for k, e in enumerate(self.envs)]
        ini.write_text("\n".join(lines) + "\n", encoding="utf-8")
        toml = []
        for k, e in enumerate(self.envs):
            toml.append(f'[{e.name}]\nowner = "{e.name.split("_")[0]}-team"')
            if e.imports is not None and start <= k < n:
                toml.append("imports = [" + ", ".join(f'"{m}"' for m in e.imports) + "]")
        ini.with_suffix(".toml").write_text("\n".join(toml) + "\n", encoding="utf-8")
        site = manifests / (f"site-{tag}.toml" if engine == "rattler" else f"site-{tag}-{engine}.toml")
        site.write_text(
            "[site]\n"
            f'root = "{self.root}"\n'
            f'manifest = "{ini.name}"\n'
            f'checks = "{self.checks}"\n'
            'channels = ["main", "internal"]\n'
            'pip_args = ["--no-index", "--find-links", "{root}/wheelhouse"]\n'
            f'engine = "{engine}"\n',
            encoding="utf-8",
        )
        return site

    def clear_qa(self) -> None:
        """Forget every build in qa (environments, results, logs) but keep its package cache."""
        qa = self.root / "v2"
        for child in (qa / "envs").iterdir() if (qa / "envs").is_dir() else ():
            shutil.rmtree(child)
        for folder in (self.root / ".condaqa" / "results", self.work / "reports"):
            shutil.rmtree(folder, ignore_errors=True)


def real_site(n: int, work: Path | None = None, jobs: int | None = None, python: str = "") -> RealSite:
    """The real site with at least n environments in current, built or grown as needed; its python is
    `python` ("3.6", found on this machine, in benchmarks/.work/real-py3.6) or else this interpreter."""
    interpreter = site_python(python)
    work = (work or WORK / ("real" + (f"-py{python}" if python else ""))).resolve()
    root = work / "site"
    marker = work / "channels-complete.json"
    specs = catalog(REAL_PACKAGES, REAL_SEED)
    started = time.monotonic()
    if not marker.is_file() or json.loads(marker.read_text())["version"] != GENERATOR_VERSION:
        if work.exists():
            shutil.rmtree(work)
        _build_channels(work, root, specs, jobs or os.cpu_count() or 1, interpreter)
        marker.write_text(json.dumps({"version": GENERATOR_VERSION}), encoding="utf-8")
    current = Installation("v1", root / "v1")
    # A site grown for a larger n keeps its environments: all are listed (the manifest must name every
    # environment of current), those beyond n as export-only.
    envs = tuple(real_env(i, specs) for i in range(max(n, len(current.environments()))))
    site = RealSite(work, root, envs)
    missing = [e for e in envs if not (current.env_prefix(e.name) / "conda-meta" / "condaqa-bench-complete").is_file()]
    if missing:
        log(f"synthetic: creating {len(missing)} environment(s) in {current.path}")
        loaded = load_site(site.site_toml(n), base=work)
        for env in missing:  # one engine process serves the calls one at a time, as in condaqa
            _create_env(loaded, current, env)
        with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:  # pip spends most of its time starting up
            list(pool.map(lambda e: _finish_env(loaded, current, e), missing))
        log(f"synthetic: site of {n} environments ready at {root} ({time.monotonic() - started:.0f}s)")
    return site


def site_python(short: str) -> Interpreter | None:
    """The interpreter a site on python `short` is built on (None: this one); without it, says why and exits."""
    if not short:
        return None
    found = find(short)
    if found is None:
        raise SystemExit(f"synthetic: {missing_reason(short)}")
    return found


def _python_and_pip(main: Path, interpreter: Interpreter | None) -> None:
    """conda's `python` in channel `main`, and the pip and setuptools bundled with that python: a venv-style link
    to this interpreter, or a self-contained copy of `interpreter` with the wheels its ensurepip carries (pip
    18.1 on 3.6: today's pip no longer runs there)."""
    if interpreter is None:
        write_package(main, python_package(platform_subdir()))
        import ensurepip

        bundled = Path(ensurepip.__file__).parent / "_bundled"
    else:
        write_package(main, old_python_package(platform_subdir(), interpreter.executable, interpreter.version))
        where = subprocess.run([str(interpreter.executable), "-E", "-s", "-c",
                                "import ensurepip, os; print(os.path.dirname(ensurepip.__file__))"],
                               capture_output=True, text=True, check=True, timeout=60)
        bundled = Path(where.stdout.strip()) / "_bundled"
    for wheel in sorted(bundled.glob("*.whl")):
        write_package(main, wheel_to_package(wheel, depends=["python"]))


def _build_channels(work: Path, root: Path, specs: list[Spec], jobs: int, interpreter: Interpreter | None) -> None:
    log(f"synthetic: writing {sum(len(s.versions) for s in specs)} conda packages "
        f"({sum(s.files * len(s.versions) for s in specs)} files) and {REAL_WHEELS} wheels under {root}")
    root.mkdir(parents=True)
    (work / "checks").mkdir()  # no owner checks
    staging = work / "staging"
    _python_and_pip(root / "main", interpreter)
    items = [(staging / f"{s.index}-{v}", root, s, v, specs) for s in specs for v in s.versions]
    with ProcessPoolExecutor(jobs) as pool:  # writing archives is CPU-bound Python
        list(pool.map(_write_one, items, chunksize=8))
    shutil.rmtree(staging, ignore_errors=True)
    rng = random.Random(REAL_SEED)
    for k in range(REAL_WHEELS):
        name = f"syn-pip{k:03d}"
        mod = name.replace("-", "_")
        nfiles = rng.randint(2, 15)
        source = f'"""{name}: synthetic pip-only distribution."""\n__version__ = "1.0.{k % 3}"\n'
        modules = {f"{mod}/__init__.py": source}
        modules.update({f"{mod}/part_{j}.py": f"PART = {j}\n" for j in range(nfiles)})
        write_wheel(root / "wheelhouse", name, f"1.0.{k % 3}", modules)
    platform = platform_subdir()
    for channel in ("main", "internal"):
        (root / channel / platform).mkdir(parents=True, exist_ok=True)
        (root / channel / "noarch").mkdir(parents=True, exist_ok=True)
        index_channel(root / channel)
    site_toml = work / "manifests" / "bootstrap.toml"
    site_toml.parent.mkdir(parents=True)
    site_toml.write_text(f'[site]\nroot = "{root}"\nchannels = ["main", "internal"]\n', encoding="utf-8")
    site = load_site(site_toml)
    create_bare(site, "v1")
    create_bare(site, "v2")
    os.symlink("v1", root / "current")
    os.symlink("v2", root / "qa")
    os.symlink("current/envs", root / "envs")


def _write_one(item: tuple) -> None:
    write_synthetic_package(*item)


def _bench_log(site: Site, env: RealEnv) -> Path:
    logs = site.root / ".condaqa" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / f"{env.name}.log"


def _create_env(site: Site, installation: Installation, env: RealEnv) -> None:
    """The conda part of environment `env` in `installation`, by condaqa's rattler engine."""
    prefix = installation.env_prefix(env.name)
    if prefix.exists():
        shutil.rmtree(prefix)
    with open(_bench_log(site, env), "w", encoding="utf-8") as out:
        get_engine("rattler").create(site, installation, BuildPlan(env.name, env.conda), prefix, out)


def _finish_env(site: Site, installation: Installation, env: RealEnv) -> None:
    """The pip section of a created environment, then its completion mark. Its bytecode is there as on a
    site conda made: the engine compiles noarch-python packages as conda does, pip what it installs."""
    prefix = installation.env_prefix(env.name)
    if env.pip:
        with open(_bench_log(site, env), "a", encoding="utf-8") as out:
            pip_install(sandbox_for(site), env.name, prefix / "bin" / "python", list(env.pip),
                        tuple(site.expand(a) for a in site.pip_args), out, stage=Stage.PIP,
                        home=pip_home(site, installation.name, env.name))
    (prefix / "conda-meta" / "condaqa-bench-complete").write_text("", encoding="utf-8")


# -- the records site ----------------------------------------------------------------------------

RECORDS_SEED = 1000


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RecordSpec:
    name: str
    version: str
    build: str
    kind: str  # python, lib or interpreter
    files: int
    channel: str  # URL with trailing slash
    depends: tuple[str, ...]

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    @property
    def fn(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"


def _record_paths(spec: RecordSpec, rng: random.Random) -> list[str]:
    sp = f"lib/{PY}/site-packages"
    if spec.kind == "interpreter":
        paths = ["bin/python", f"bin/{PY}", "bin/python3", f"lib/lib{PY}.so", f"lib/lib{PY}.so.1.0"]
        paths += _layout(spec.files - len(paths), f"lib/{PY}/", ".py")
        return paths
    if spec.kind == "python":
        dist = f"{sp}/{spec.module}-{spec.version}.dist-info/"
        paths = [dist + f for f in ("INSTALLER", "METADATA", "RECORD", "WHEEL", "top_level.txt")]
        paths += [f"{sp}/{spec.module}/__init__.py", *_layout(spec.files - 6, f"{sp}/{spec.module}/", ".py")]
        return paths
    lib = spec.name.replace("-", "")
    paths = [f"lib/lib{lib}.so", f"lib/lib{lib}.so.{spec.version}"]
    rest = spec.files - 2
    return paths + _layout(rest // 2, f"include/{lib}/", ".h") + _layout(rest - rest // 2, f"share/{lib}/", ".txt")


def record_json(spec: RecordSpec, pkgs: str, rng: random.Random) -> str:
    """A conda-meta record as py-rattler 0.28 writes it (keys in its order, indent 2)."""
    files = _record_paths(spec, rng)
    paths = []
    for path in files:
        entry: dict = {"_path": path, "path_type": "hardlink", "sha256": _sha(path)}
        if spec.kind != "python" and rng.random() < 0.08:  # text files with the build prefix in them
            entry.update(file_mode="text", prefix_placeholder="/home/conda/feedstock_root/build_artifacts/"
                         + spec.name + "_1700000000000/_h_env_placehold_placehold_placehold_placehold_placehold",
                         sha256_in_prefix=_sha(path + "@prefix"))
        entry["size_in_bytes"] = rng.randint(60, 200_000)
        paths.append(entry)
    record: dict = {}
    if spec.kind != "python":
        record["arch"] = "x86_64"
    record.update(build=spec.build, build_number=0, depends=list(spec.depends), indexed_timestamp=1_795_606_921_990,
                  license="BSD-3-Clause", md5=_sha(spec.fn)[:32], name=spec.name)
    if spec.kind == "python":
        record["noarch"] = "python"
    else:
        record["platform"] = "linux"
    subdir = "noarch" if spec.kind == "python" else "linux-64"
    record.update(sha256=_sha(spec.fn), size=rng.randint(5_000, 40_000_000), subdir=subdir,
                  timestamp=1_700_000_000_000, version=spec.version, fn=spec.fn,
                  url=f"{spec.channel}{subdir}/{spec.fn}", channel=spec.channel,
                  extracted_package_dir=f"{pkgs}/{spec.fn[:-8]}", requested_specs=[], files=files,
                  paths_data={"paths_version": 1, "paths": paths}, link={"source": f"{pkgs}/{spec.fn[:-8]}", "type": 1})
    return json.dumps(record, indent=2)


@dataclass(frozen=True)
class RecordsSite:
    work: Path
    root: Path
    site_toml: Path
    envs: tuple[str, ...]
    packages_per_env: int


def records_site(n: int = 1000, m: int = 150, work: Path | None = None) -> RecordsSite:
    """n environments of m conda packages (python and pip included), records written directly."""
    work = (work or WORK / f"records-{n}x{m}").resolve()
    root = work / "site"
    marker = work / "complete.json"
    names = tuple(env_name(i) for i in range(n))
    site_toml = work / "manifests" / "site.toml"
    if marker.is_file() and json.loads(marker.read_text()).get("version") == GENERATOR_VERSION:
        return RecordsSite(work, root, site_toml, names, m)
    if work.exists():
        shutil.rmtree(work)
    started = time.monotonic()
    log(f"synthetic: writing {n} environments of {m} conda packages under {root}")
    rng = random.Random(RECORDS_SEED)
    conda_forge = "https://conda.anaconda.org/conda-forge/"
    internal = (root / "internal").as_uri() + "/"
    pkgs = str(root / "v1" / "pkgs")
    pool: list[RecordSpec] = [
        RecordSpec("python", "3.11.7", "hab00c5b_0_cpython", "interpreter", PYTHON_FILES, conda_forge, ()),
        RecordSpec("pip", "23.2.1", "pyhd8ed1ab_0", "python", 510, conda_forge, ("python >=3.7",)),
    ]
    for i in range(max(2 * m, 600)):
        kind = "python" if rng.random() < 0.6 else "lib"
        channel = internal if rng.random() < 0.1 else conda_forge
        for v in ("1.0.0", "1.1.0")[: rng.choice((1, 2))]:
            build = "pyhd8ed1ab_0" if kind == "python" else "h59595ed_0"
            pool.append(RecordSpec(f"rec-{kind}{i:03d}", v, build, kind, file_count(rng), channel,
                                   ("python >=3.8",) if kind == "python" else ("libgcc-ng >=12",)))
    store = work / "records"
    store.mkdir(parents=True)
    for spec in pool:
        (store / f"{spec.fn[:-8]}.json").write_text(record_json(spec, pkgs, rng), encoding="utf-8")
    by_name: dict[str, list[RecordSpec]] = {}
    for spec in pool[2:]:
        by_name.setdefault(spec.name, []).append(spec)
    wheels = work / "dists"
    for k in range(200):
        _pip_dist(wheels, f"syn-pip{k:03d}", f"1.0.{k % 3}", direct=(k % 10 == 0))
    env_root = root / "v1" / "envs"
    for sub in ("v1/conda-meta", "v1/pkgs", "v2/conda-meta", "v2/envs", "v2/pkgs", "internal/noarch"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "v1" / "conda-meta" / "history").touch()
    (root / "v2" / "conda-meta" / "history").touch()
    os.symlink("v1", root / "current")
    os.symlink("v2", root / "qa")
    names_pool = sorted(by_name)
    for i, name in enumerate(names):
        erng = random.Random(RECORDS_SEED * 7919 + i)
        chosen = [pool[0], pool[1]] + [erng.choice(by_name[x]) for x in erng.sample(names_pool, m - 2)]
        prefix = env_root / name
        meta = prefix / "conda-meta"
        meta.mkdir(parents=True)
        sp = prefix / "lib" / PY / "site-packages"
        sp.mkdir(parents=True)
        for spec in chosen:
            os.link(store / f"{spec.fn[:-8]}.json", meta / f"{spec.fn[:-8]}.json")
            if spec.kind == "python":
                (sp / spec.module).mkdir()
                (sp / f"{spec.module}-{spec.version}.dist-info").mkdir()
        for k in sorted(erng.sample(range(200), min(200, erng.choice(CORPUS_PIP)))):
            dist = f"syn_pip{k:03d}-1.0.{k % 3}.dist-info"
            shutil.copytree(wheels / dist, sp / dist, copy_function=os.link)
            (sp / f"syn_pip{k:03d}").mkdir()
        (meta / "history").write_text(_history(chosen), encoding="utf-8")
    _write_records_site_toml(work, root, names)
    marker.write_text(json.dumps({"version": GENERATOR_VERSION, "envs": n, "packages": m}), encoding="utf-8")
    log(f"synthetic: records site ready ({time.monotonic() - started:.0f}s)")
    return RecordsSite(work, root, site_toml, names, m)


def _pip_dist(folder: Path, name: str, version: str, direct: bool) -> None:
    dist = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: synthetic\n"
                                   "Requires-Python: >=3.8\n\nA synthetic pip-only distribution.\n", encoding="utf-8")
    (dist / "INSTALLER").write_text("pip\n", encoding="utf-8")
    (dist / "WHEEL").write_text("Wheel-Version: 1.0\nGenerator: condaqa\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    record = [f"{name.replace('-', '_')}/part_{j}.py,sha256={_sha(str(j))[:43]},{20 + j}" for j in range(12)]
    (dist / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
    if direct:
        (dist / "direct_url.json").write_text(json.dumps(
            {"url": "https://git.example.org/team/" + name, "vcs_info": {"vcs": "git", "commit_id": _sha(name)[:40]}}))


def _history(chosen: list[RecordSpec]) -> str:
    lines = ["==> 2021-03-04 10:11:12 <==", "# cmd: /pkg/conda/bin/conda create -n env python=3.11 pip",
             "# conda version: 4.8.3"]
    lines += [f"+conda-forge/{'noarch' if s.kind == 'python' else 'linux-64'}::{s.name}-{s.version}-{s.build}"
              for s in chosen]
    lines.append("# update specs: ['python=3.11', 'pip']")
    return "\n".join(lines) + "\n"


def _write_records_site_toml(work: Path, root: Path, names: tuple[str, ...]) -> None:
    manifests = work / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    (work / "checks").mkdir(exist_ok=True)
    (manifests / "environments.ini").write_text(
        "[environments]\n" + "".join(f"{n} = REPLICATE\n" for n in names), encoding="utf-8")
    (manifests / "site.toml").write_text(
        "[site]\n"
        f'root = "{root}"\n'
        f'checks = "{work / "checks"}"\n'
        'channels = ["https://conda.anaconda.org/conda-forge", "internal"]\n',
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    r = sub.add_parser("real", help="real site: packages, wheelhouse, installations, N environments in current")
    r.add_argument("envs", type=int)
    r.add_argument("--python", default="", metavar="X.Y",
                   help="build it on this machine's python X.Y (e.g. 3.6, for real conda 4.3), in its own folder")
    d = sub.add_parser("records", help="records site: N environments of M packages, records written directly")
    d.add_argument("envs", type=int)
    d.add_argument("packages", type=int, nargs="?", default=150)
    args = parser.parse_args(argv)
    if args.kind == "real":
        site = real_site(args.envs, python=args.python)
        print(site.site_toml(args.envs))
    else:
        print(records_site(args.envs, args.packages).site_toml)
    return 0


if __name__ == "__main__":
    sys.exit(main())
