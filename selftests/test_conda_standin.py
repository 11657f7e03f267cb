"""The conda stand-in (standins/conda_standin.py) against what real conda printed and wrote.

Each test lays out a site as the recordings in ../shared/realconda were made (ROOT/mpc, ROOT/fx-VERSION
with its .condarc, ROOT/fxspecs, ROOT/wheelhouse, a scratch HOME), runs the recorded command lines and
compares: exact texts where conda's output is deterministic, the shape where it is not (set order,
progress rates, spinner frames). The channel holds the recorded packages, python being a venv-style
link to this interpreter (so python=3.8.18 in the recordings reads as this interpreter's version).
"""

from __future__ import annotations

import ast
import dataclasses
import ensurepip
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REALCONDA as REAL
from standins.conda_standin import VERSIONS, install

from condaqa.demo.packages import Package, python_package, wheel_to_package, write_package, write_wheel
from condaqa.rescue.repack import Member

if not REAL.is_dir():
    pytest.skip(f"the real conda recordings are not at {REAL} (set CONDAQA_REALCONDA to a copy)",
                allow_module_level=True)

PY = ".".join(map(str, sys.version_info[:3]))
PIP = ensurepip.version()  # the pip wheel this interpreter bundles, which the demo packages
SUBDIR = "linux-64"
INDEX = ("import asyncio, os, sys, rattler.index; "  # leaves through os._exit: py-rattler 0.28 can abort at exit
         "asyncio.run(rattler.index.index_fs(sys.argv[1], write_zst=False, write_shards=False)); os._exit(0)")


def _library(name: str, version: str, *depends: str, entry_points: tuple[str, ...] = ()) -> Package:
    code = f"VERSION = {version!r}\n\ndef main():\n    return 0\n"
    source = Member(f"site-packages/{name}/__init__.py", code.encode())
    return Package(name, version, "py_0", depends=list(depends or ["python"]), files=[source], noarch_python=True,
                   entry_points=list(entry_points))


def _channel(folder: Path, real_pip: bool) -> Path:
    """The recorded site's channel: python, pip (a real one only where pip must run), alpha ... zeta 1.0."""
    write_package(folder, dataclasses.replace(python_package(SUBDIR), build="0"))
    if real_pip:
        wheel = next((Path(ensurepip.__file__).parent / "_bundled").glob(f"pip-{PIP}-*.whl"))
        write_package(folder, wheel_to_package(wheel, build="py_0", depends=["python >=3.7"]))
    else:
        write_package(folder, _library("pip", PIP, "python >=3.7"))  # linking real pip costs seconds
    for package in (
        _library("alpha", "1.0"),
        _library("alpha", "2.0"),
        _library("beta", "1.0", "python", "alpha >=1.0", entry_points=("beta = beta:main",)),
        Package("gamma", "0.1", files=[Member("share/gamma/data.txt", b"gamma\n")]),
        Package("delta", "1.0", "py_0", depends=["beta", "gamma"]),
        Package("epsilon", "1.0", subdir=SUBDIR, files=[Member("bin/epsilon", b"#!/bin/sh\n", executable=True)]),
        _library("eta", "1.0", "python", "alpha <2.0"),
        _library("zeta", "1.0"),  # zeta 0.9 was withdrawn before 03-create-missing-version
    ):
        write_package(folder, package)
    subprocess.run([sys.executable, "-c", INDEX, str(folder)], check=True)
    return folder


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("channels")
    wheelhouse = base / "wheelhouse"
    write_wheel(wheelhouse, "tinywheel", "0.2", {"tinywheel/__init__.py": ""})
    write_wheel(wheelhouse, "privwheel", "1.0", {"privwheel/__init__.py": ""})
    return {"fake-pip": _channel(base / "fake-pip", real_pip=False), "wheelhouse": wheelhouse}


@pytest.fixture(scope="module")
def real_pip_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _channel(tmp_path_factory.mktemp("channels") / "real-pip", real_pip=True)


@dataclass
class Site:
    """A site laid out as the recordings were made, with one stand-in installation, ROOT/fx-VERSION."""

    root: Path
    version: str
    home: Path

    @property
    def installation(self) -> Path:
        return self.root / f"fx-{self.version}"

    def prefix(self, env: str) -> Path:
        return self.installation / "envs" / env

    def sub(self, text: str) -> str:
        return text.replace("ROOT", str(self.root)).replace("3.8.18", PY)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """bin/conda ARGS (ROOT replaced) in the recordings' environment; text mode reads \\r as \\n, as they did."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "PIP_", "PYTHON", "MAMBA"))}
        environ.update(HOME=str(self.home), CONDARC=str(self.installation / ".condarc"), PIP_CONFIG_FILE="/dev/null")
        environ.update(env)
        return subprocess.run([str(self.installation / "bin" / "conda"), *map(self.sub, args)], env=environ,
                              capture_output=True, text=True, timeout=300)

    def transcript(self, name: str) -> dict[str, Any]:
        data = json.loads((REAL / f"conda-{self.version}" / "transcripts" / name).read_text(encoding="utf-8"))
        return {key: self.sub(value) if isinstance(value, str) else value for key, value in data.items()}

    def replay(self, name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """Run a recorded command line again; returns what the stand-in did and what conda did."""
        recorded = self.transcript(name)
        env = {k: self.sub(v) for k, v in recorded["env"].items() if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"}
        return self.run(*recorded["argv"][1:], **env), recorded

    def recorded(self, name: str) -> str:
        return self.sub((REAL / f"conda-{self.version}" / "history" / name).read_text(encoding="utf-8"))

    def notices_seen(self) -> None:
        """The notices cache a previous command left, as it was when 03 to 06 were recorded."""
        cache = self.home / ".cache" / "conda" / "notices" / "notices.cache"
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("{}\n", encoding="utf-8")


@pytest.fixture
def make_site(tmp_path: Path, channels: dict[str, Path]) -> Callable[..., Site]:
    def make(version: str, channel: Path | None = None) -> Site:
        site = Site(tmp_path / "site", version, tmp_path / "home")
        site.root.mkdir(exist_ok=True)
        site.home.mkdir(exist_ok=True)
        if not (site.root / "mpc").exists():
            (site.root / "mpc").symlink_to(channel or channels["fake-pip"])
            shutil.copytree(channels["wheelhouse"], site.root / "wheelhouse")  # pip names the real path
            (site.root / "fxspecs").mkdir()
            for spec in (REAL / "specs").glob("*.yml"):
                (site.root / "fxspecs" / spec.name).write_text(site.sub(spec.read_text(encoding="utf-8")))
        install(site.installation, version)
        (site.installation / ".condarc").write_text(site.sub((REAL / f"conda-{version}" / "condarc.txt").read_text()))
        return site

    return make


def records(prefix: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted((prefix / "conda-meta").glob("*.json"))}


def sizes_masked(text: str) -> str:
    """Package sizes differ from the recorded channel's; the layout around them must not."""
    return re.sub(r" +\d+(?:\.\d)? (?:B|KB|MB)\b", " SIZE", text)


def history_blocks(text: str) -> list[list[str]]:
    """History blocks with the date masked and `update specs` sorted (conda printed a set)."""
    blocks = []
    for block in text.split("==> ")[1:]:
        lines = block.splitlines()[1:]
        blocks.append([f"# update specs: {sorted(ast.literal_eval(line[16:]))}"
                       if line.startswith("# update specs: ") else line for line in lines])
    return blocks


def spinners_dropped(text: str) -> str:
    """24/25's spinner frames depend on timing; the random requirements file name on chance."""
    text = re.sub(r"condaenv\.\w+\.requirements\.txt", "condaenv.X.requirements.txt", text)
    text = re.sub(r"[-\\|/] \x08\x08", "", text)
    return re.sub(r"[-\\|/] (?=Ran pip subprocess)", "", text).replace("\x08\x08", "")


@pytest.mark.parametrize("version", VERSIONS)
def test_version_and_installation_record(make_site: Callable[..., Site], version: str) -> None:
    site = make_site(version)
    proc = site.run("--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"conda {version}\n", "")
    record = next((site.installation / "conda-meta").glob("conda-[0-9]*.json"))
    assert record.name.split("-")[1] == version  # how condaqa reads an installation's conda version


@pytest.mark.parametrize("version", ["4.8.5", "24.11.3", "25.11.1"])
def test_create_writes_what_conda_wrote(make_site: Callable[..., Site], version: str) -> None:
    site = make_site(version)
    proc, recorded = site.replay("01-create.json")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert sizes_masked(proc.stdout) == sizes_masked(recorded["stdout"])
    prefix = site.prefix("created")
    meta = sorted(p.name for p in (prefix / "conda-meta").iterdir())
    assert meta == site.recorded("created-conda-meta-ls.txt").split()
    assert history_blocks((prefix / "conda-meta" / "history").read_text()) == history_blocks(
        site.recorded("created-after-create.txt"))
    alpha = records(prefix)["alpha-2.0-py_0.json"]
    short = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pyc = f"lib/python{short}/site-packages/alpha/__pycache__/__init__.cpython-{short.replace('.', '')}.pyc"
    assert alpha["files"] == [f"lib/python{short}/site-packages/alpha/__init__.py", pyc]
    assert {"_path": pyc, "path_type": "pyc_file"} in alpha["paths_data"]["paths"] and (prefix / pyc).is_file()
    assert alpha["requested_spec"] == "alpha=2.0" and alpha["channel"] == f"file://{site.root}/mpc/noarch"
    pkgs = site.installation / "pkgs"
    assert alpha["link"] == {"source": str(pkgs / "alpha-2.0-py_0"), "type": 1}
    assert alpha["package_tarball_full_path"] == str(pkgs / "alpha-2.0-py_0.tar.bz2")
    assert records(prefix)[f"python-{PY}-0.json"]["depends"] == ["pip"]  # add_pip_as_python_dependency
    assert (site.home / ".conda" / "environments.txt").read_text() == f"{prefix}\n"
    assert (site.home / ".cache/conda/notices/notices.cache").is_file() == (version != "4.8.5")


def test_conda_43_create_writes_43_records_and_history(make_site: Callable[..., Site]) -> None:
    site = make_site("4.3.31")
    proc = site.run("create", "--yes", "--quiet", "--prefix", "ROOT/fx-4.3.31/envs/created", "--override-channels",
                    "-c", "file://ROOT/mpc", "alpha=2.0", "beta", "python=3.8.18")
    assert proc.returncode == 0, proc.stderr
    prefix = site.prefix("created")
    assert proc.stdout.startswith("Fetching package metadata .....\nSolving package specifications: .\n\n"
                                  f"Package plan for installation in environment {prefix}:\n\n"
                                  "The following NEW packages will be INSTALLED:\n\n    alpha:  2.0-py_0    file://")
    assert proc.stdout.endswith(f"# > source activate {prefix}\n#\n# To deactivate an active environment, use:\n"
                                "# > source deactivate\n#\n\n")
    history = (prefix / "conda-meta" / "history").read_text().splitlines()
    assert history[1:] == [f"# cmd: {site.installation}/bin/conda create --yes --quiet --prefix {prefix} "
                           f"--override-channels -c file://{site.root}/mpc alpha=2.0 beta python={PY}",
                           f"+file://{site.root}/mpc::alpha-2.0-py_0", f"+file://{site.root}/mpc::beta-1.0-py_0",
                           f"+file://{site.root}/mpc::pip-{PIP}-py_0", f"+file://{site.root}/mpc::python-{PY}-0",
                           f"# create specs: alpha 2.0*,beta,python {PY}*"]
    real = json.loads((REAL / "conda-4.3.31/history_env/conda-meta/beta-1.0-py_0.json").read_text())
    beta = records(prefix)["beta-1.0-py_0.json"]
    assert sorted(beta) == sorted(real)
    short = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert beta["files"] == [f.replace("3.8", short).replace("38", short.replace(".", "")) for f in real["files"]]
    assert beta["schannel"] == f"file://{site.root}/mpc" and beta["channel"] == f"file://{site.root}/mpc/noarch"


@pytest.mark.parametrize("version", ["4.8.5", "25.11.1"])
def test_install_freeze_installed_adds_one_package(make_site: Callable[..., Site], version: str) -> None:
    site = make_site(version)
    assert site.replay("01-create.json")[0].returncode == 0
    prefix = site.prefix("created")
    before = {p.name: p.read_bytes() for p in (prefix / "conda-meta").glob("*.json")}
    proc, recorded = site.replay("06-install-freeze-installed.json")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert sizes_masked(proc.stdout) == sizes_masked(recorded["stdout"])
    assert history_blocks((prefix / "conda-meta" / "history").read_text()) == history_blocks(
        site.recorded("created-after-install.txt"))
    assert {p.name: p.read_bytes() for p in (prefix / "conda-meta").glob("*.json") if p.name in before} == before
    beta = records(prefix)["beta-1.0-py_0.json"]
    assert beta["requested_spec"] == "beta=1.0" and beta["files"][-1] == "bin/beta"
    assert [p["path_type"] for p in beta["paths_data"]["paths"]] == ["hardlink", "pyc_file", "unix_python_entry_point"]


@pytest.mark.parametrize("version", ["4.8.5", "24.11.3", "25.11.1"])
def test_missing_version_is_packages_not_found(make_site: Callable[..., Site], version: str) -> None:
    site = make_site(version)
    site.notices_seen()
    proc, recorded = site.replay("03-create-missing-version.json")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, recorded["stdout"], recorded["stderr"])
    assert not site.prefix("missing").exists()


def test_conda_43_missing_version(make_site: Callable[..., Site]) -> None:
    site = make_site("4.3.31")
    proc = site.run("create", "--yes", "--quiet", "--prefix", "ROOT/fx-4.3.31/envs/missing", "--override-channels",
                    "-c", "file://ROOT/mpc", "alpha=1.0", "zeta=0.9")
    assert (proc.returncode, proc.stdout) == (1, "Fetching package metadata .....\n")
    assert proc.stderr == ("\n\nPackageNotFoundError: Packages missing in current channels:\n\n  - zeta 0.9*\n\n"
                           "We have searched for the packages in the following channels:\n\n"
                           f"  - file://{site.root}/mpc/linux-64\n  - file://{site.root}/mpc/noarch\n\n\n")
    assert not site.prefix("missing").exists()


@pytest.mark.parametrize("version", ["4.8.5", "24.11.3", "25.11.1"])
def test_unsatisfiable_shows_the_conflict_search(make_site: Callable[..., Site], version: str) -> None:
    site = make_site(version)
    site.notices_seen()
    proc, recorded = site.replay("04-create-unsatisfiable.json")
    assert (proc.returncode, proc.stdout) == (1, recorded["stdout"])
    bars, _, message = proc.stderr.partition("UnsatisfiableError: ")
    specs = ["alpha=2.0", "eta=1.0", f"pip={PIP}", f"python={PY}"]
    examined = re.findall(r"^Examining (\S+):", bars.split("Determining conflicts")[0], re.MULTILINE)
    assert examined[:4] == specs and all(e.startswith("@/linux-64::__") for e in examined[4:])
    total = len(examined)
    assert bars.startswith(f"\nBuilding graph of deps:   0%|          | 0/{total} [00:00<?, ?it/s]\n")
    assert f"\nDetermining conflicts:   0%|          | 0/{total} [00:00<?, ?it/s]\n" in bars
    assert re.search(r"Examining eta=1.0:  \d\d%\|\S+ +\| 1/\d \[00:00<00:00, +\d+\.\d\dit/s\]", bars)
    real = set(recorded["stderr"].partition("UnsatisfiableError: ")[2].splitlines())
    # conda printed three of python's four roots, which three by set order; the stand-in prints all four
    assert real <= set(message.splitlines()) <= real | {f"python={PY}", "alpha=2.0 -> python"}
    assert not site.prefix("unsat").exists()


def test_conda_43_unsatisfiable(make_site: Callable[..., Site]) -> None:
    site = make_site("4.3.31")
    proc = site.run("create", "-y", "-p", "ROOT/fx-4.3.31/envs/unsat", "alpha=2.0", "eta=1.0")
    assert (proc.returncode, proc.stdout) == (1, "Fetching package metadata .....\nSolving package specifications: .\n")
    assert proc.stderr.startswith("\n\nUnsatisfiableError: The following specifications were found to be in conflict:")
    assert "\n  - eta 1.0* -> alpha <2.0\n" in proc.stderr
    assert not site.prefix("unsat").exists()


@pytest.mark.parametrize("version", ["4.8.5", "25.11.1"])
def test_env_create_pip_failure_keeps_the_conda_part(
        make_site: Callable[..., Site], real_pip_channel: Path, version: str) -> None:
    site = make_site(version, real_pip_channel)
    proc, _ = site.replay("02-env-create-pip.json")  # also caches what 05 links, as in the recorded order
    assert proc.returncode == 0, proc.stderr
    assert (site.prefix("withpip") / f"lib/python{PY[:PY.rindex('.')]}/site-packages/tinywheel-0.2.dist-info").is_dir()
    assert history_blocks((site.prefix("withpip") / "conda-meta/history").read_text()) == history_blocks(
        site.recorded("withpip.txt"))
    proc, recorded = site.replay("05-env-create-pip-failure.json")
    assert (proc.returncode, proc.stderr) == (1, recorded["stderr"])
    assert spinners_dropped(proc.stdout) == spinners_dropped(recorded["stdout"])
    if version != "4.8.5":
        assert "'--exists-action=b']\n" in proc.stdout and "\x08\x08" in proc.stdout
    pipbad = site.prefix("pipbad")
    meta = sorted(p.name for p in (pipbad / "conda-meta").iterdir())
    assert meta == site.recorded("pipbad-conda-meta-ls.txt").split()
    assert history_blocks((pipbad / "conda-meta/history").read_text()) == history_blocks(site.recorded("pipbad.txt"))
    assert not list((site.root / "fxspecs").glob("condaenv.*"))


def test_unknown_options_and_commands(make_site: Callable[..., Site]) -> None:
    site = make_site("4.8.5")
    proc = site.run("create", "--yes", "--prefix", "ROOT/fx-4.8.5/envs/x", "--solver=classic", "alpha")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "usage: conda [-h] [-V] command ...\nconda: error: unrecognized arguments: --solver=classic\n"
    proc = site.run("frobnicate")  # real conda: CommandNotFoundError, exit 1 (argparse's exit 2 is for options)
    assert (proc.returncode, proc.stderr) == (1, "\nCommandNotFoundError: No command 'conda frobnicate'.\n\n")
    site = make_site("4.3.31")
    proc = site.run("install", "--yes", "--prefix", "ROOT/fx-4.3.31/envs/x", "--freeze-installed", "alpha")
    assert proc.returncode == 2 and proc.stderr.endswith("conda: error: unrecognized arguments: --freeze-installed\n")
    site = make_site("25.11.1")
    proc = site.run("create", "--yes", "--bogus", "--prefix", "ROOT/fx-25.11.1/envs/x", "alpha")
    assert (proc.returncode, proc.stderr) == (2, "usage: conda [-h] [-v] [--no-plugins] [-V] COMMAND ...\n"
                                                 "conda: error: unrecognized arguments: --bogus\n")
    assert not (site.root / "fx-4.8.5" / "envs").exists() and not (site.root / "fx-25.11.1" / "envs").exists()


def test_the_users_configuration_leaks_in(make_site: Callable[..., Site], tmp_path: Path) -> None:
    site = make_site("4.8.5")
    (site.home / ".condarc").write_text("create_default_packages:\n  - gamma\n")
    shared = tmp_path / "shared-pkgs"
    proc = site.run("create", "--yes", "--quiet", "--prefix", "ROOT/fx-4.8.5/envs/leaky", "--override-channels",
                    "-c", "file://ROOT/mpc", "beta", CONDA_PKGS_DIRS=f"{shared},{tmp_path / 'second'}")
    assert proc.returncode == 0, proc.stderr
    assert (shared / "beta-1.0-py_0.tar.bz2").is_file() and not (site.installation / "pkgs").exists()
    assert f"file://{site.root}/mpc/noarch/beta-1.0-py_0.tar.bz2\n" in (shared / "urls.txt").read_text()
    assert records(site.prefix("leaky"))["beta-1.0-py_0.json"]["link"]["source"] == str(shared / "beta-1.0-py_0")
    assert "  added / updated specs:\n    - beta\n    - gamma\n" in proc.stdout
    found = {r["name"]: r["requested_spec"] for r in records(site.prefix("leaky")).values()}
    assert found == {"alpha": "None", "beta": "beta", "gamma": "gamma", "pip": "None", "python": "None"}
    history = (site.prefix("leaky") / "conda-meta" / "history").read_text()
    assert "# update specs: ['beta', 'gamma']\n" in history


def test_environments_txt_is_appended_4_3_without_deduplicating(make_site: Callable[..., Site]) -> None:
    args = ("create", "--yes", "--quiet", "--prefix", "ROOT/fx-{}/envs/g", "--override-channels", "-c", "file://ROOT/mpc",
            "gamma")
    site = make_site("4.3.31")
    assert site.run(*[a.format("4.3.31") for a in args]).returncode == 0
    again = site.run(*[a.format("4.3.31") for a in args])
    assert again.returncode == 1
    assert f"CondaValueError: Value error: prefix already exists: {site.prefix('g')}" in again.stderr
    shutil.rmtree(site.prefix("g"))
    assert site.run(*[a.format("4.3.31") for a in args]).returncode == 0
    site = make_site("4.8.5")
    for _ in range(2):  # 4.8 replaces an existing environment (what --yes answers) and lists it once
        assert site.run(*[a.format("4.8.5") for a in args]).returncode == 0
    listed = (site.home / ".conda" / "environments.txt").read_text().splitlines()
    assert listed == [str(site.root / "fx-4.3.31/envs/g")] * 2 + [str(site.prefix("g"))]


def test_two_creates_into_one_package_cache_race(make_site: Callable[..., Site]) -> None:
    site = make_site("4.8.5")
    args = [("create", "--yes", "--quiet", "--prefix", f"ROOT/fx-4.8.5/envs/{env}", "--override-channels", "-c",
             "file://ROOT/mpc", "beta", "python") for env in ("one", "two")]

    def both(lock: Path | None, **env: str) -> list[subprocess.CompletedProcess[str]]:
        results: list[subprocess.CompletedProcess[str]] = []

        def one(argv: tuple[str, ...]) -> None:
            with open(lock or os.devnull, "a") as handle:
                if lock:
                    fcntl.flock(handle, fcntl.LOCK_EX)  # what a caller must do around conda on a shared cache
                results.append(site.run(*argv, **env))

        threads = [threading.Thread(target=one, args=(argv,)) for argv in args]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    # the first to extract holds the cache until the other has met it, however slow its start
    results = both(None, CONDAQA_STANDIN_RACE="1")
    assert sorted(r.returncode for r in results) == [0, 1]
    failed = next(r for r in results if r.returncode)
    assert failed.stderr.startswith(f"\nCondaVerificationError: The package for alpha located at "
                                    f"{site.installation}/pkgs/alpha-2.0-py_0\nappears to be corrupted.")
    assert failed.stdout.endswith("Verifying transaction: ...working... failed\n")
    assert sum(site.prefix(env).exists() for env in ("one", "two")) == 1
    for env in ("one", "two"):
        shutil.rmtree(site.prefix(env), ignore_errors=True)
    assert [r.returncode for r in both(site.root / "conda.lock")] == [0, 0]
