"""A stand-in for real conda's `bin/conda`, for the conda versions no package registry serves.

conda 4.3.16 runs for real in selftests/test_realconda_live.py (installed from PyPI); this stand-in
stays for what no registry conda can show: the 4.8.5, 24.11.3 and 25.11.1 transcripts (and 4.3.31's).

Built from what real conda 4.3.31, 4.8.5, 24.11.3 and 25.11.1 wrote and printed, as recorded in
../shared/realconda (its README.md says how). `install()` writes an executable `bin/conda` and a conda
record into a fake installation. That `bin/conda` runs `main()`, which prints the recorded stdout and
stderr texts (with the actual prefix, channels and specs) and exits with the recorded codes. It writes
conda-meta records with that version's keys, .pyc files included as conda compiles them at link time,
and history blocks in that version's format. It creates no prefix after PackagesNotFoundError or
UnsatisfiableError. It has real conda's side effects outside the prefix: the package cache (with its
extraction race), ~/.conda/environments.txt, the 24/25 notices cache, and `create_default_packages`
from the .condarc files. Those are what condaqa has to fence off. py-rattler does the real work
(solve, extract, link).

Played: `--version`; `create` and `install` with `-y -q -p/-n --override-channels -c URL`, `install
--freeze-installed` (4.8+), `--solver` (24/25); `env create -p/-n -f FILE` with a pip section. Where
the recordings are silent (4.3's errors and `env create`, 4.8+'s ResolvePackageNotFound and
CommandNotFoundError), the texts follow conda's source for that version.

Not emulated:
- other commands (exit 3, saying so), channels other than file:// URLs or paths, `defaults`;
- prompts (it always acts as if --yes), --json, --dry-run, `create --file/--clone`, menus, link scripts,
  shell activation (pip runs with the prefix's bin first on PATH and CONDA_PREFIX set, nothing more);
- the classic solver: rattler solves, so ties may resolve differently. A missing top-level spec is
  PackagesNotFoundError, any other failure UnsatisfiableError, with conda's conflict report rebuilt
  from shortest dependency chains. 4.8+ installs pin everything installed (conda's frozen first
  attempt) and never retry unfrozen, so their plans list NEW packages only;
- what conda printed in set order (update specs, conflict groups) comes in command-line order; the
  tqdm rates and the __archspec build are this machine's; the contents of 25.11's conda-meta/created_at
  and of the notices cache are not recorded, so these are made up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import rattler
import yaml
from rattler.exceptions import InvalidMatchSpecError, SolverError

VERSIONS = ("4.3.31", "4.8.5", "24.11.3", "25.11.1")
LOCK_FILE = ".standin-extract.lock"
RACE = os.environ.get("CONDAQA_STANDIN_RACE") == "1"  # a test of the race: the first extractor waits for the second
CONTENDER = ".condaqa-standin-contender"  # in pkgs: another stand-in found the cache taken
CURRENT_REPODATA, REPODATA = "current_repodata.json", "repodata.json"
CONDA_COMMANDS = {"clean", "config", "create", "info", "install", "list", "package", "remove", "search",
                  "uninstall", "update", "upgrade", "env", "activate", "deactivate", "run", "init", "notices",
                  "rename", "compare", "doctor", "export"}
CONFLICTS_FOUND = ("\nFound conflicts! Looking for incompatible packages.\n"
                   "This can take several minutes.  Press CTRL-C to abort.\n")
Json = dict[str, Any]
NotFound = Callable[[list[str], list[str]], "CondaError"]
STRICT_NOTE = "\nNote that strict channel priority may have removed packages required for satisfiability."


def install(installation: Path, version: str) -> Path:
    """Make `installation` a conda root of `version`: bin/conda runs this module, conda-meta records conda."""
    if version not in VERSIONS:
        raise ValueError(f"no stand-in for conda {version}; supported: {', '.join(VERSIONS)}")
    conda = installation / "bin" / "conda"
    conda.parent.mkdir(parents=True, exist_ok=True)
    conda.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from conda_standin import main\n"
        f"main({version!r}, sys.argv[1:])\n",
        encoding="utf-8",
    )
    conda.chmod(0o755)
    record = {"build": "py_0", "build_number": 0, "depends": [], "files": [], "fn": f"conda-{version}-py_0.tar.bz2",
              "name": "conda", "subdir": "noarch", "version": version}
    meta = installation / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / f"conda-{version}-py_0.json").write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    return conda


def main(version: str, argv: list[str]) -> NoReturn:
    """Run one conda command line as conda `version`, then leave through os._exit (py-rattler 0.28 can
    abort while the interpreter finalizes)."""
    conda = Conda(version, Path(sys.argv[0]).absolute().parent.parent, sys.argv[0])
    try:
        code = conda.run(argv)
    except UsageError as exc:
        sys.stderr.write(f"{conda.usage}\nconda: error: {exc}\n")
        code = 2
    except CondaError as exc:
        sys.stderr.write(conda.error_text(exc))
        code = 1
    except NotEmulated as exc:
        sys.stderr.write(f"conda stand-in: {exc} is not emulated (selftests/standins/conda_standin.py)\n")
        code = 3
    except Exception:  # conda's own "unexpected error" report is not emulated: the traceback is more use
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class CondaError(Exception):
    """A failure real conda reports as `Name: message` on stderr, exit 1."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class UsageError(Exception):
    """argparse's complaint: the usage line and `conda: error: ...`, exit 2."""


class NotEmulated(Exception):
    """A command real conda has and this stand-in does not play."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _local(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))


def _name(spec: str) -> str:
    return rattler.MatchSpec(spec).name.normalized


def spec_str(spec: str) -> str:
    """str(MatchSpec(spec)) as conda 4.8 and later print it: `alpha=2.0`, `alpha[version='<2.0']`."""
    match = rattler.MatchSpec(spec)
    channel = spec.split("::", 1)[0] + "::" if "::" in spec else ""
    text, brackets = channel + match.name.normalized, []
    version = str(match.version) if match.version is not None else ""
    build = match.build or ""
    if any(c in version for c in "><$^|,") or (version[:2] in ("!=", "~=") and build):
        brackets.append(f"version='{version}'")
    elif version[:2] in ("!=", "~="):
        text += version
    elif version.endswith(".*"):
        text += "=" + version[:-2]
    elif version.endswith("*"):
        text += "=" + version[:-1]
    elif version.startswith("=="):
        text += version
    elif version:
        text += "==" + version
    if build:
        if any(c in build for c in "><$^|,"):
            brackets.append(f"build='{build}'")
        elif "*" in build or not version:
            brackets.append(f"build={build}")
        else:
            text += "=" + build
    return text + (f"[{','.join(brackets)}]" if brackets else "")


def exact_pin(spec: str) -> str:
    """conda's command line reads `name=version=build` as an exact pin (4.3: `name version build`); py-rattler's
    strict parser, which solves here, wants it spelled `name ==version build`."""
    parts = spec.split("=")
    return f"{parts[0]} =={parts[1]} {parts[2]}" if len(parts) == 3 and all(parts) else spec


def spec_str_43(spec: str) -> str:
    """The spec as conda 4.3 normalizes it for history and errors: `python 3.8*`, `alpha 1.0 py_0`."""
    match = rattler.MatchSpec(spec)
    version = str(match.version) if match.version is not None else ""
    if version.endswith(".*"):
        version = version[:-2] + "*"
    elif version.startswith("=="):
        version = version[2:]
    return " ".join(part for part in (match.name.normalized, version, match.build or "") if part)


def human_bytes(n: int) -> str:
    """conda's size text: `588 B`, `12 KB`, `1.5 MB`."""
    if n < 1024:
        return f"{n} B"
    if n / 1024 < 1024:
        return f"{round(n / 1024)} KB"
    if n / 1024**2 < 1024:
        return f"{n / 1024**2:.1f} MB"
    return f"{n / 1024**3:.2f} GB"


def dist(record: rattler.RepoDataRecord) -> str:
    return f"{record.name.normalized}-{record.version}-{record.build}"


def channel_url(record: rattler.RepoDataRecord) -> str:
    """The channel's URL, without subdir or trailing slash (`file:///site/mpc`)."""
    return str(record.url).rsplit("/", 2)[0]


@dataclass(frozen=True)
class Config:
    """What real conda reads from its .condarc files and environment here."""

    channels: tuple[str, ...]
    default_packages: tuple[str, ...]
    pkgs_dir: Path
    strict: bool
    add_pip: bool

    @classmethod
    def read(cls, root: Path) -> Config:
        """The installation's .condarc, ~/.condarc, then $CONDARC: later files win, their lists come first."""
        found: list[Json] = []
        seen: set[Path] = set()
        for candidate in (root / ".condarc", Path(os.path.expanduser("~/.condarc")), os.environ.get("CONDARC")):
            if candidate and Path(candidate).is_file() and Path(candidate).resolve() not in seen:
                seen.add(Path(candidate).resolve())
                found.append(yaml.safe_load(Path(candidate).read_text(encoding="utf-8")) or {})

        def merged(key: str) -> tuple[str, ...]:
            return tuple(dict.fromkeys(str(v) for rc in reversed(found) for v in rc.get(key) or ()))

        def last(key: str, default: object) -> object:
            return next((rc[key] for rc in reversed(found) if key in rc), default)

        pkgs = [p for p in os.environ.get("CONDA_PKGS_DIRS", "").split(",") if p] or list(merged("pkgs_dirs"))
        pkgs_dir = Path(os.path.expanduser(os.path.expandvars(pkgs[0]))) if pkgs else root / "pkgs"
        strict = str(last("channel_priority", "flexible")) == "strict"
        return cls(merged("channels"), merged("create_default_packages"), pkgs_dir, strict,
                   bool(last("add_pip_as_python_dependency", True)))


@dataclass
class Index:
    """The channels' repodata.json for the subdirs conda searches (this platform, noarch)."""

    urls: list[str]
    records: list[rattler.RepoDataRecord]
    entries: dict[str, Json]

    @classmethod
    def load(cls, channels: Sequence[str], subdirs: Sequence[str]) -> Index:
        urls, records, entries = [], [], {}
        for channel in channels:
            for subdir in subdirs:
                url = f"{channel}/{subdir}"
                urls.append(url)
                path = _local(url) / REPODATA
                if not path.is_file():
                    continue
                raw = json.loads(path.read_text(encoding="utf-8"))
                for key in ("packages", "packages.conda"):
                    entries.update({f"{url}/{fn}": entry for fn, entry in (raw.get(key) or {}).items()})
                records += rattler.RepoData.from_path(path).into_repo_data(rattler.Channel(channel))
        return cls(urls, records, entries)

    def matching(self, spec: str) -> list[rattler.RepoDataRecord]:
        match = rattler.MatchSpec(spec)
        return [r for r in self.records if match.matches(r)]

    def missing(self, specs: Sequence[str]) -> list[str]:
        return [s for s in specs if not self.matching(s)]

    def entry(self, record: rattler.RepoDataRecord) -> Json:
        return self.entries.get(str(record.url), {})

    def find(self, name: str, version: str, build: str) -> rattler.RepoDataRecord | None:
        wanted = (name, version, build)
        return next((r for r in self.records if (r.name.normalized, str(r.version), str(r.build)) == wanted), None)

    def chains(self, spec: str) -> dict[str, list[str]]:
        """The shortest dependency chain (of specs) from `spec` to every package name it leads to."""
        found = {_name(spec): [spec]}
        queue = deque([[spec]])
        while queue:
            chain = queue.popleft()
            for record in self.matching(chain[-1]):
                for dep in record.depends:
                    if _name(dep) not in found:
                        found[_name(dep)] = [*chain, dep]
                        queue.append([*chain, dep])
        return found


class Phase:
    """conda's Spinner around one step: `Step: ...working... done`, or a spinner (24/25 unless --quiet)."""

    frames = itertools.cycle("/-\\|")  # shared, and each spinner takes one frame when made, as in conda

    def __init__(self, message: str, spin: bool) -> None:
        next(Phase.frames)
        self.message, self.spin = message, spin
        self.result: str | None = None  # what to print instead of done/failed (a retry notice)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def __enter__(self) -> Phase:
        _out(f"{self.message}: ")
        if self.spin:
            self._thread.start()
        else:
            _out("...working... ")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.spin:
            self._stop.set()
            self._thread.join()
        _out(self.result or ("failed\n" if kind else "done\n"))

    def _spin(self) -> None:
        while not self._stop.is_set():
            _out(next(Phase.frames) + " ")
            self._stop.wait(0.1)
            _out("\b\b")


class Bar:
    """tqdm's output off a terminal, as conda's conflict search writes it to stderr: `\\r`-joined, cleared."""

    def __init__(self, description: str, total: int) -> None:
        self.total, self.n, self.shown = total, 0, 0
        self.started = time.perf_counter()
        self.describe(description)

    def describe(self, description: str) -> None:
        frac = self.n / self.total if self.total else 0.0
        full, part = divmod(int(frac * 10 * 8), 8)
        bar = "█" * full + (" ▏▎▍▌▋▊▉"[part] + " " * (9 - full) if full < 10 else "")
        elapsed = time.perf_counter() - self.started
        if self.n and elapsed:
            rate = self.n / elapsed
            timing = f"[00:00<{_clock((self.total - self.n) / rate)}, {rate:5.2f}it/s]"
        else:
            timing = "[00:00<?, ?it/s]"
        line = f"{description}: {frac * 100:3.0f}%|{bar}| {self.n}/{self.total} {timing}"
        _err("\r" + line + " " * max(self.shown - len(line), 0))
        self.shown = len(line)

    def update(self) -> None:
        self.n += 1

    def close(self) -> None:
        _err("\r" + " " * self.shown + "\r")


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


@dataclass(frozen=True)
class Installed:
    """One conda-meta record of the prefix, as much of it as a plan and the history need."""

    name: str
    version: str
    build: str
    channel: str
    subdir: str

    @property
    def dist(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"


def installed(prefix: Path) -> dict[str, Installed]:
    """The packages the prefix's conda-meta records, by name."""
    found = {}
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["name"]] = Installed(data["name"], data["version"], data["build"],
                                        str(data.get("url", "")).rsplit("/", 2)[0], data.get("subdir", ""))
    return found


class Conda:
    """One conda version's behaviour; `era` is 4.3, 4.8 or modern (24.11 and 25.11)."""

    def __init__(self, version: str, root: Path, program: str) -> None:
        if version not in VERSIONS:
            raise ValueError(f"no stand-in for conda {version}")
        self.version, self.root, self.program = version, root, program
        self.era = "4.3" if version.startswith("4.3") else "4.8" if version.startswith("4.8") else "modern"
        self.subdir = str(rattler.Subdir.current())
        self.config = Config.read(root)
        self.cmd = program

    @property
    def usage(self) -> str:
        if self.era == "modern":
            return "usage: conda [-h] [-v] [--no-plugins] [-V] COMMAND ..."
        return "usage: conda [-h] [-V] command ..."

    # -- command line --------------------------------------------------------------------------

    def run(self, argv: list[str]) -> int:
        self.cmd = " ".join([self.program, *argv])
        if argv in (["--version"], ["-V"]):
            print(f"conda {self.version}")
            return 0
        if not argv or argv[0] in ("-h", "--help"):
            print(self.usage)
            return 0
        command, rest = argv[0], argv[1:]
        if command in ("create", "install"):
            return self.create_or_install(command, self.options(command, rest))
        if command == "env" and rest[:1] == ["create"]:
            if self.era != "modern":  # conda env ran bin/conda-env, and history records that argv
                self.cmd = " ".join([str(Path(self.program).with_name("conda-env")), *rest])
            return self.env_create(self.options("env create", rest[1:]))
        if command.startswith("-"):
            raise UsageError(f"unrecognized arguments: {command}")
        if command in CONDA_COMMANDS:
            raise NotEmulated(f"'conda {' '.join(argv[:2] if command == 'env' else argv[:1])}'")
        if self.era == "4.3":
            raise CondaError("CommandNotFoundError", f"Conda could not find the command: '{command}'")
        message = f"No command 'conda {command}'."
        close = difflib.get_close_matches(command, sorted(CONDA_COMMANDS))
        raise CondaError("CommandNotFoundError", message + (f"\nDid you mean 'conda {close[0]}'?" if close else ""))

    def options(self, command: str, args: list[str]) -> argparse.Namespace:
        """The options conda `command` takes (those the stand-in plays); any other is unrecognized."""
        parser = _Parser(prog=f"conda {command}", add_help=False)
        target = parser.add_mutually_exclusive_group()
        target.add_argument("-p", "--prefix")
        target.add_argument("-n", "--name")
        parser.add_argument("-q", "--quiet", action="store_true")
        if self.era == "modern":
            parser.add_argument("--solver", choices=("classic", "libmamba"))
        if command == "env create":
            parser.add_argument("-f", "--file", default="environment.yml")
        else:
            parser.add_argument("-y", "--yes", action="store_true")
            parser.add_argument("-c", "--channel", action="append", default=[])
            parser.add_argument("--override-channels", action="store_true")
            if command == "install" and self.era != "4.3":  # --freeze-installed came with conda 4.6
                parser.add_argument("--freeze-installed", action="store_true")
            parser.add_argument("packages", nargs="*")
        options, unknown = parser.parse_known_args(args)
        if unknown:
            raise UsageError("unrecognized arguments: " + " ".join(unknown))
        return options

    def value_error(self, message: str) -> CondaError:
        return CondaError("CondaValueError", ("Value error: " if self.era == "4.3" else "") + message)

    def error_text(self, error: CondaError) -> str:
        lead = "\n\n" if self.era == "4.3" else "\n"
        return f"{lead}{error.name}: {error.message}\n\n"

    def prefix(self, options: argparse.Namespace, fallback: str | None = None) -> Path | None:
        if options.prefix:
            return Path(os.path.abspath(os.path.expanduser(options.prefix)))
        name = options.name or fallback
        return self.root / "envs" / name if name else None

    def channels(self, given: Sequence[str], override: bool) -> list[str]:
        """-c channels, then (unless --override-channels) the .condarc ones; file:// URLs and paths only."""
        urls = []
        for channel in [*given, *(() if override else self.config.channels)]:
            if channel == "nodefaults":
                continue
            if channel.startswith("/"):
                channel = Path(channel).as_uri()
            if not channel.startswith("file://"):
                raise NotEmulated(f"channel {channel!r} (only file:// channels are read)")
            urls.append(channel.rstrip("/"))
        if not urls:
            raise NotEmulated("the 'defaults' channel")
        return list(dict.fromkeys(urls))

    def check_specs(self, specs: Sequence[str]) -> None:
        for spec in specs:
            try:
                rattler.MatchSpec(spec)
            except InvalidMatchSpecError as exc:
                if self.era == "4.3":
                    raise self.value_error(f"invalid package specification: {spec}") from None
                raise CondaError("InvalidMatchSpec", f"Invalid spec '{spec}': {str(exc).splitlines()[0]}") from None

    def spin(self, quiet: bool) -> bool:
        """24/25 spin unless --quiet; 4.8 only on a terminal; 4.3 prints no steps."""
        return not quiet and (self.era == "modern" or sys.stdout.isatty())

    # -- create, install, env create --------------------------------------------------------------

    def create_or_install(self, command: str, options: argparse.Namespace) -> int:
        prefix = self.prefix(options) or (self.root if command == "install" else None)
        if prefix is None:
            raise self.value_error('either -n NAME or -p PREFIX option required,\n'
                                   'try "conda create -h" for more details')
        specs = [exact_pin(s) for s in options.packages]
        if command == "create":
            names = {_name(s) for s in specs}
            specs += [d for d in self.config.default_packages if _name(d) not in names]
        self.check_specs(specs)
        if command == "install":
            if not (prefix / "conda-meta" / "history").is_file():
                if self.era == "4.3":
                    raise CondaError("CondaEnvironmentNotFoundError", f"Could not find environment: {prefix} .\n"
                                     "You can list all discoverable environments with `conda info --envs`.")
                raise CondaError("EnvironmentLocationNotFound", f"Not a conda environment: {prefix}")
            if not specs:
                raise self.value_error("too few arguments, must supply command line package specs or --file")
        elif (prefix / "conda-meta").is_dir():
            if self.era == "4.3":
                raise self.value_error(f"prefix already exists: {prefix}")
            shutil.rmtree(prefix)  # what --yes answers to "A conda environment already exists ... Remove?"
        elif not specs and self.era == "4.3":
            raise self.value_error("too few arguments, must supply command line package specs or --file")
        channels = self.channels(options.channel, options.override_channels)
        spin = self.spin(options.quiet)
        self.notices(channels, spin)
        before = installed(prefix)
        index, records = self.resolve(channels, specs, before, (CURRENT_REPODATA, REPODATA), spin,
                                      self.packages_not_found)
        added = [r for r in records if before.get(r.name.normalized, None) != self.as_installed(r)]
        kept = {r.name.normalized for r in records} - {r.name.normalized for r in added}
        removed = [i for n, i in before.items() if n not in kept]
        if not added and not removed:
            _out("# All requested packages already installed.\n" if self.era == "4.3"
                 else "\n# All requested packages already installed.\n\n")
            return 0
        if self.era == "4.3":
            self.plan_43(prefix, added, removed, before)
        else:
            self.plan(prefix, specs, added)
        self.transact(command, prefix, index, records, added, removed, specs, options.quiet, spin)
        if command == "create":
            self.activate_message(options.name or str(prefix), options.quiet)
        return 0

    def env_create(self, options: argparse.Namespace) -> int:
        file = Path(os.path.abspath(options.file))
        if not file.is_file():
            raise CondaError("EnvironmentFileNotFound", f"'{file}' file not found")
        environment = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        dependencies = environment.get("dependencies") or []
        specs = [d for d in dependencies if isinstance(d, str)]
        pip_specs = [str(p) for d in dependencies if isinstance(d, dict) for p in d.get("pip") or ()]
        prefix = self.prefix(options, environment.get("name")) or self.root  # no name anywhere: base, as conda
        if (prefix / "conda-meta").is_dir():
            raise self.value_error(f"prefix already exists: {prefix}")
        self.check_specs(specs)
        spin = self.spin(options.quiet)
        channels = self.channels(list(environment.get("channels") or ()), False)
        self.notices(channels, spin)
        index, records = self.resolve(channels, specs, {}, (REPODATA,), spin, self.resolve_not_found)
        self.transact("create", prefix, index, records, records, [], specs, options.quiet, spin)
        if pip_specs:
            self.pip(prefix, pip_specs, file.parent, spin)
        self.activate_message(options.name or str(prefix), options.quiet)
        return 0

    def as_installed(self, record: rattler.RepoDataRecord) -> Installed:
        return Installed(record.name.normalized, str(record.version), str(record.build), channel_url(record),
                         str(record.subdir))

    def notices(self, channels: Sequence[str], spin: bool) -> None:
        """24/25 fetch channel notices first and cache them under ~/.cache; 25.11 says so when it fetches."""
        if self.era != "modern":
            return
        cache = Path(os.path.expanduser("~/.cache/conda/notices/notices.cache"))
        fetch = self.version.startswith("25.") and not cache.is_file()
        with Phase("Retrieving notices", spin) if fetch else contextlib.nullcontext():
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"channels": list(channels), "retrieved": _now()}) + "\n", encoding="utf-8")

    # -- solving --------------------------------------------------------------------------------

    def resolve(self, channels: list[str], specs: list[str], before: dict[str, Installed], repodata_fns: Sequence[str],
                spin: bool, not_found: NotFound) -> tuple[Index, list[rattler.RepoDataRecord]]:
        """Read the channels and solve, printing what this version prints; 4.8+ retry the next repodata."""
        index = Index.load(channels, [self.subdir, "noarch"])
        locked = [r for i in before.values() if (r := index.find(i.name, i.version, i.build))]
        if self.era == "4.3":  # keeps every installed package, free to update it
            keep = [i.name for i in before.values() if i.name not in {_name(s) for s in specs}]
            _out(f"Fetching package metadata {'.' * (len(index.urls) + 3)}\n")
            if missing := index.missing(specs):
                raise not_found(missing, index.urls)
            _out("Solving package specifications: ")
            try:
                records = self.solve(channels, [*keep, *specs], locked)
            except SolverError:
                _out(".\n")
                raise self.unsatisfiable(index, [*specs, *keep]) from None
            _out(".\n")
            return index, records
        keep = [f"{i.name} =={i.version} {i.build}" for i in before.values()]  # frozen, as 4.7+ try first
        outcome = self.attempt(index, channels, specs, keep, locked, not_found)
        *retries, final = repodata_fns  # every repodata source reads the same files here
        for fn in retries:
            with Phase(f"Collecting package metadata ({fn})", spin):
                pass
            with Phase("Solving environment", spin) as phase:
                if isinstance(outcome, list):
                    return index, outcome
                phase.result = (f"failed with repodata from {fn}, will retry with next repodata source.\n"
                                if self.era == "4.8" else
                                f"unsuccessful attempt using repodata from {fn}, retrying with next repodata source.\n")
        with Phase(f"Collecting package metadata ({final})", spin):
            pass
        with Phase("Solving environment", spin):
            if isinstance(outcome, list):
                return index, outcome
            if outcome is not None:
                raise outcome
            _out(CONFLICTS_FOUND)
            raise self.unsatisfiable(index, [*specs, *keep])

    def attempt(self, index: Index, channels: list[str], specs: list[str], keep: list[str],
                locked: list[rattler.RepoDataRecord], not_found: NotFound
                ) -> list[rattler.RepoDataRecord] | CondaError | None:
        """The solution, the error for specs no channel has, or None when the specs cannot be satisfied."""
        if missing := index.missing(specs):
            return not_found(missing, index.urls)
        try:
            return self.solve(channels, [*keep, *specs], locked)
        except SolverError:
            return None

    def solve(self, channels: list[str], specs: list[str], locked: list[rattler.RepoDataRecord]
              ) -> list[rattler.RepoDataRecord]:
        return asyncio.run(rattler.solve(
            sources=[rattler.Channel(url) for url in channels],
            specs=specs,
            platforms=[rattler.Subdir(self.subdir), rattler.Subdir("noarch")],
            locked_packages=locked,
            virtual_packages=rattler.VirtualPackage.detect(),
            channel_priority=rattler.ChannelPriority.Strict,
            add_pip_as_python_dependency=self.config.add_pip,
        ))

    def packages_not_found(self, missing: list[str], urls: list[str]) -> CondaError:
        if self.era == "4.3":
            return CondaError("PackageNotFoundError", "Packages missing in current channels:\n\n"
                              + "".join(f"  - {spec_str_43(s)}\n" for s in missing)
                              + "\nWe have searched for the packages in the following channels:\n\n"
                              + "".join(f"  - {u}\n" for u in urls))
        return CondaError("PackagesNotFoundError", "The following packages are not available from current channels:\n\n"
                          + "".join(f"  - {spec_str(s)}\n" for s in missing)
                          + "\nCurrent channels:\n\n" + "".join(f"  - {u}\n" for u in urls)
                          + "\nTo search for alternate channels that may provide the conda package you're\n"
                            "looking for, navigate to\n\n    https://anaconda.org\n\n"
                            "and use the search bar at the top of the page.\n")

    def resolve_not_found(self, missing: list[str], urls: list[str]) -> CondaError:
        """`conda env create` does not turn the solver's ResolvePackageNotFound into PackagesNotFoundError."""
        if self.era == "4.3":
            return self.packages_not_found(missing, urls)
        return CondaError("ResolvePackageNotFound", "".join(f"\n  - {spec_str(s)}" for s in missing))

    def unsatisfiable(self, index: Index, specs: list[str]) -> CondaError:
        """conda's conflict search (build_conflict_map) in short: the names two or more specs lead to."""
        chains = {spec: index.chains(spec) for spec in specs}
        reached: dict[str, list[str]] = {}
        for spec, found in chains.items():
            for name in found:
                if not name.startswith("__"):
                    reached.setdefault(name, []).append(spec)
        by_roots: dict[tuple[str, ...], list[str]] = {}
        for name, roots in reached.items():
            if len(roots) > 1:
                by_roots.setdefault(tuple(roots), []).append(name)
        groups = []
        for group_roots, names in by_roots.items():
            requested = [n for n in names if n in {_name(r) for r in group_roots}]
            node = requested[0] if requested else min(names, key=lambda n: len(chains[group_roots[0]][n]))
            groups.append((node, group_roots, [chains[root][node] for root in group_roots]))
        if self.era == "4.3":
            lines = sorted({" -> ".join(spec_str_43(s) for s in chain) for _, _, group in groups for chain in group})
            return CondaError("UnsatisfiableError", "The following specifications were found to be in conflict:"
                              + "".join(f"\n  - {line}" for line in lines)
                              + '\nUse "conda info <package>" to see the dependencies for each package.')
        shown = [spec_str(s) for s in specs] + self.virtual_specs()
        bar = Bar("Building graph of deps", len(shown))
        for spec in shown:
            bar.describe(f"Examining {spec}")
            bar.update()
        bar.close()
        bar = Bar("Determining conflicts", len(shown))
        for _, group_roots, _ in groups:
            bar.describe("Examining conflict for " + " ".join(_name(r) for r in group_roots))
            bar.update()
        bar.close()
        if not groups:
            return CondaError("UnsatisfiableError", "\nDid not find conflicting dependencies. If you would like to "
                              "know which\npackages conflict ensure that you have enabled unsatisfiable hints.\n\n"
                              "conda config --set unsatisfiable_hints True\n")
        message = ("The following specifications were found to be incompatible with each other:\n\n"
                   "Output in format: Requested package -> Available versions")
        for node, _, group in groups:
            message += f"\n\nPackage {node} conflicts for:\n" + "\n".join(" -> ".join(map(spec_str, c)) for c in group)
        return CondaError("UnsatisfiableError", message + (STRICT_NOTE if self.config.strict else ""))

    def virtual_specs(self) -> list[str]:
        """The system packages conda adds to the conflict search (4.8 knew only __glibc and __cuda)."""
        known = ("__glibc", "__cuda") if self.era == "4.8" else ("__glibc", "__linux", "__archspec", "__unix", "__cuda")
        found = []
        for package in rattler.VirtualPackage.detect():
            generic = package.into_generic()
            if generic.name.normalized in known:
                found.append(f"@/{self.subdir}::{generic.name.normalized}=={generic.version}={generic.build_string}")
        if self.era == "modern":
            found.append(f"@/{self.subdir}::__conda=={self.version}=0")
        return found

    # -- plans ----------------------------------------------------------------------------------

    def plan(self, prefix: Path, specs: list[str], added: list[rattler.RepoDataRecord]) -> None:
        """The `## Package Plan ##` of conda 4.8+ (conda/core/link.py _change_report_str)."""
        lines = ["", "## Package Plan ##\n", f"  environment location: {prefix}", ""]
        if specs:
            lines += ["  added / updated specs:" + "".join(f"\n    - {s}" for s in sorted(map(spec_str, specs))), ""]
        fetch = [r for r in added if not self.cached(r)]
        if fetch:
            lines += ["\nThe following packages will be downloaded:\n", f"    {'package':<27}|{'build':>17}",
                      f"    {'-' * 27}|{'-' * 17}"]
            for record in sorted(fetch, key=lambda r: r.name.normalized):
                package = f"{record.name.normalized}-{record.version}"
                lines.append(f"    {package:<27}|{record.build!s:>17}{human_bytes(record.size or 0):>15}  "
                             + channel_url(record))
            lines += ["    " + "-" * 60, " " * 43 + f"Total: {human_bytes(sum(r.size or 0 for r in fetch)):>14}"]
        lines.append("\nThe following NEW packages will be INSTALLED:\n")
        tail = " " if self.era == "modern" else ""
        for record in sorted(added, key=lambda r: r.name.normalized):
            name = record.name.normalized if len(record.name.normalized) <= 18 else record.name.normalized[:15] + "~"
            where = f"{channel_url(record).rsplit('/', 1)[-1]}/{record.subdir}::{dist(record)}"
            lines.append(f"  {name:<18} {where}{tail}")
        print("\n".join([*lines, "", ""]))

    def plan_43(self, prefix: Path, added: list[rattler.RepoDataRecord], removed: list[Installed],
                before: dict[str, Installed]) -> None:
        """conda 4.3's `Package plan for installation` (conda/plan.py display_actions)."""
        new = {r.name.normalized: (f"{r.version}-{r.build}", channel_url(r), r.version) for r in added}
        old = {i.name: (f"{i.version}-{i.build}", i.channel, rattler.Version(i.version))
               for i in removed + [before[n] for n in new if n in before]}
        names = sorted(set(new) | set(old))
        width = max(len(n) for n in names) + 1
        old_v = max((len(v[0]) for v in old.values()), default=0)
        old_c = max((len(v[1]) for v in old.values()), default=0)
        new_v = max((len(v[0]) for v in new.values()), default=0)
        new_c = max((len(v[1]) for v in new.values()), default=0)

        def left(n: str) -> str:
            return f"    {n + ':':<{width}} {old[n][0]:<{old_v}} {old[n][1]:<{old_c}}"

        def right(n: str) -> str:
            return f"{new[n][0]:<{new_v}} {new[n][1]:<{new_c}}"

        sections = {
            "The following NEW packages will be INSTALLED:":
                [f"    {n + ':':<{width}} {right(n)}" for n in names if n not in old],
            "The following packages will be REMOVED:": [left(n) for n in names if n not in new],
            "The following packages will be UPDATED:":
                [f"{left(n)} --> {right(n)}" for n in names if n in new and n in old and new[n][2] > old[n][2]],
            "The following packages will be DOWNGRADED:":
                [f"{left(n)} --> {right(n)}" for n in names if n in new and n in old and new[n][2] <= old[n][2]],
        }
        text = f"\nPackage plan for installation in environment {prefix}:\n"
        for title, rows in sections.items():
            if rows:
                text += f"\n{title}\n\n" + "".join(row + "\n" for row in rows)
        print(text)

    def activate_message(self, env: str, quiet: bool) -> None:
        """What to type to activate the new environment (the name given with -n, else the prefix)."""
        if self.era == "4.3":
            print(f"#\n# To activate this environment, use:\n# > source activate {env}\n#\n"
                  "# To deactivate an active environment, use:\n# > source deactivate\n#\n")
        elif not quiet:
            where = f'"{env}"' if " " in env else env
            print(f"#\n# To activate this environment, use\n#\n#     $ conda activate {where}\n#\n"
                  "# To deactivate an active environment, use\n#\n#     $ conda deactivate\n")

    # -- the transaction ------------------------------------------------------------------------

    def cached(self, record: rattler.RepoDataRecord) -> bool:
        pkgs = self.config.pkgs_dir
        return (pkgs / dist(record) / "info" / "index.json").is_file() or (pkgs / record.file_name).is_file()

    def transact(self, command: str, prefix: Path, index: Index, records: list[rattler.RepoDataRecord],
                 added: list[rattler.RepoDataRecord], removed: list[Installed], specs: list[str], quiet: bool,
                 spin: bool) -> None:
        """Download into the package cache, then verify, link, record and write history, as conda does."""
        fetch = [r for r in added if not self.cached(r)]
        self.download(fetch, quiet)
        with extract_lock(self.config.pkgs_dir) as free:
            if self.era == "4.3":
                if not free and added:  # nothing to verify, nothing to find half-extracted
                    raise self.corrupted(added)
                self.link(command, prefix, index, records, added, removed, specs)
                return
            with Phase("Preparing transaction", spin):
                pass
            with Phase("Verifying transaction", spin):
                if not free and added:  # nothing to verify, nothing to find half-extracted
                    raise self.corrupted(added)
            with Phase("Executing transaction", spin):
                self.link(command, prefix, index, records, added, removed, specs)

    def download(self, fetch: list[rattler.RepoDataRecord], quiet: bool) -> None:
        """Copy the archives into the package cache (a file:// download) and list them in urls.txt."""
        pkgs = self.config.pkgs_dir
        pkgs.mkdir(parents=True, exist_ok=True)
        if self.era == "4.8" and fetch and not quiet:
            _out("\nDownloading and Extracting Packages\n")
        elif self.era == "modern" and not quiet:
            _out("\nDownloading and Extracting Packages: ...working...")
        for record in sorted(fetch, key=lambda r: r.name.normalized):
            partial = pkgs / f".{record.file_name}.{os.getpid()}.partial"
            shutil.copyfile(_local(str(record.url)), partial)
            os.replace(partial, pkgs / record.file_name)
            with open(pkgs / "urls.txt", "a", encoding="utf-8") as urls:
                urls.write(f"{record.url}\n")
            if quiet or self.era == "4.3":
                continue
            label = f"{f'{record.name.normalized}-{record.version}'[:20]:<20} | {human_bytes(record.size or 0):<9} | "
            start, done = label + " " * 10 + " |   0% ", label + "#" * 10 + " | 100% "
            _out(f"\r{start}\r{done}\n" if self.era == "4.8" else f"\r{start}\r{done}\r{done}\r{' ' * len(done)}\r")
        if self.era == "modern" and not quiet:
            _out(" done\n")

    def corrupted(self, candidates: list[rattler.RepoDataRecord]) -> CondaError:
        """What conda reports when another process is half-way through extracting the same packages: the
        first of the transaction it verifies, whatever this process found cached or downloaded itself."""
        pkgs = self.config.pkgs_dir
        for record in sorted(candidates, key=lambda r: r.name.normalized):
            paths = rattler.PathsJson.from_package_archive(_local(str(record.url))).paths
            if paths:
                return CondaError("CondaVerificationError", f"The package for {record.name.normalized} located at "
                                  f"{pkgs / dist(record)}\nappears to be corrupted. The path "
                                  f"'{paths[0].relative_path}'\nspecified in the package manifest cannot be found.\n")
        record = candidates[0]
        return CondaError("InvalidArchiveError", f"Error with archive {pkgs / record.file_name}.  You probably need to "
                          "delete and re-download or re-create this file.  Message was:\n\nfailed with error: "
                          f"[Errno 17] File exists: '{pkgs / dist(record)}'")

    def link(self, command: str, prefix: Path, index: Index, records: list[rattler.RepoDataRecord],
             added: list[rattler.RepoDataRecord], removed: list[Installed], specs: list[str]) -> None:
        new = not (prefix / "conda-meta").is_dir()
        tag = prefix / "CACHEDIR.TAG"
        had_tag = tag.exists()
        asyncio.run(rattler.install(records, target_prefix=prefix, cache_dir=self.config.pkgs_dir, show_progress=False,
                                    installed_packages=linked_records(prefix, index)))
        if not had_tag:
            tag.unlink(missing_ok=True)  # py-rattler marks the prefix as a cache folder; conda does not
        pyc = compile_pyc(prefix, records, added)
        requested = {_name(s): spec_str(s) for s in specs}
        for record in added:
            path = prefix / "conda-meta" / f"{dist(record)}.json"
            written = json.loads(path.read_text(encoding="utf-8"))
            data = self.record(prefix, record, index.entry(record), written, pyc.get(dist(record), []), requested)
            path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        self.history(command, prefix, added, removed, specs)
        if command == "create" or self.era != "4.3":
            self.register(prefix)
        if new and self.version.startswith("25."):
            (prefix / "conda-meta" / "created_at").write_text(_now() + "\n", encoding="utf-8")

    def record(self, prefix: Path, record: rattler.RepoDataRecord, entry: Json, written: Json, pyc: list[str],
               requested: dict[str, str]) -> Json:
        """The conda-meta record this version writes, from the repodata entry and py-rattler's link."""
        pkgs = self.config.pkgs_dir
        paths = written.get("paths_data", {}).get("paths", [])
        entry_points = [p["_path"] for p in paths if p["path_type"] == "unix_python_entry_point"]
        linked = [p for p in paths if p["path_type"] != "unix_python_entry_point"]
        depends = list(entry.get("depends", record.depends))
        if self.config.add_pip and record.name.normalized == "python" and str(record.version)[:2] in ("2.", "3."):
            depends += [] if "pip" in {_name(d) for d in depends} else ["pip"]
        base = {"build": str(record.build), "build_number": record.build_number, "channel": f"{channel_url(record)}/"
                f"{record.subdir}", "depends": depends, "fn": record.file_name, "license": entry.get("license"),
                "link": {"source": str(pkgs / dist(record)), "type": written.get("link", {}).get("type", 1)},
                "md5": entry.get("md5"), "name": record.name.normalized, "size": entry.get("size", record.size),
                "subdir": str(record.subdir), "timestamp": entry.get("timestamp"), "url": str(record.url),
                "version": str(record.version)}
        if self.era == "4.3":
            return {**base, "arch": entry.get("arch"), "auth": None, "noarch": entry.get("noarch"),
                    "platform": entry.get("platform"), "preferred_env": None, "priority": 0,
                    "schannel": channel_url(record), "with_features_depends": {},
                    "files": [p["_path"] for p in linked] + entry_points + pyc}
        data = {**base, "constrains": list(entry.get("constrains", [])),
                "extracted_package_dir": str(pkgs / dist(record)),
                "package_tarball_full_path": str(pkgs / record.file_name),
                "requested_spec": requested.get(record.name.normalized, "None"),
                "files": [p["_path"] for p in linked] + pyc + entry_points}
        data.update({k: entry[k] for k in ("arch", "platform", "license_family", "noarch", "sha256", "track_features",
                                           "features") if entry.get(k)})
        if self.era == "modern" and entry.get("noarch"):
            data["package_type"] = f"noarch_{entry['noarch']}"
        path_data = []
        for p in linked:
            item = {k: p[k] for k in ("_path", "path_type", "sha256", "size_in_bytes", "prefix_placeholder",
                                      "file_mode", "no_link") if k in p}
            if self.era == "modern" and p["path_type"] == "hardlink":
                item["sha256_in_prefix"] = hashlib.sha256((prefix / p["_path"]).read_bytes()).hexdigest()
            path_data.append(item)
        path_data += [{"_path": p, "path_type": "pyc_file"} for p in pyc]
        path_data += [{"_path": p, "path_type": "unix_python_entry_point"} for p in entry_points]
        data["paths_data"] = {"paths": path_data, "paths_version": 1}
        return {k: v for k, v in data.items() if v is not None}

    def history(self, command: str, prefix: Path, added: list[rattler.RepoDataRecord], removed: list[Installed],
                specs: list[str]) -> None:
        """Append this transaction to conda-meta/history in this version's format."""
        lines = [f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} <==", f"# cmd: {self.cmd}"]
        if self.era == "4.3":
            lines += sorted(f"-{i.channel}::{i.dist}" for i in removed)
            lines += sorted(f"+{channel_url(r)}::{dist(r)}" for r in added)
            lines.append(f"# {command} specs: {','.join(map(spec_str_43, specs))}")
        else:
            lines.append(f"# conda version: {self.version}")
            lines += sorted(f"-{i.channel}/{i.subdir}::{i.dist}" for i in removed)
            lines += sorted(f"+{channel_url(r)}/{r.subdir}::{dist(r)}" for r in added)
            lines.append(f"# update specs: {[spec_str(s) for s in specs]!r}")
        with open(prefix / "conda-meta" / "history", "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    def register(self, prefix: Path) -> None:
        """~/.conda/environments.txt: 4.3 appends every created prefix, 4.8+ each prefix once."""
        path = Path(os.path.expanduser("~/.conda/environments.txt"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.era != "4.3" and path.is_file() and str(prefix) in path.read_text(encoding="utf-8").splitlines():
            return
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{prefix}\n")

    # -- pip ------------------------------------------------------------------------------------

    def pip(self, prefix: Path, specs: list[str], workdir: Path, spin: bool) -> None:
        """The pip section: the new environment's pip, on a condaenv.*.requirements.txt beside the file."""
        with tempfile.NamedTemporaryFile("w", prefix="condaenv.", suffix=".requirements.txt", dir=workdir,
                                         delete=False, encoding="utf-8") as requirements:
            requirements.write("\n".join(specs))
        env = {**os.environ, "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               "CONDA_PREFIX": str(prefix)}
        try:
            if self.era == "4.3":
                self.pip_43(prefix, requirements.name, workdir, env)
                return
            with Phase("Installing pip dependencies", spin):
                args = [str(prefix / "bin" / "python"), "-m", "pip", "install", "-U", "-r", requirements.name]
                args += ["--exists-action=b"] if self.era == "modern" else []
                try:
                    proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True)
                    stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
                except OSError as exc:
                    stdout, stderr, code = "", str(exc), 127
                _out(f"Ran pip subprocess with arguments:\n{args!r}\nPip subprocess output:\n{stdout}\n")
                if code:
                    _err(f"Pip subprocess error:\n{stderr}\n")
                    raise CondaError("CondaEnvException", "Pip failed")
        finally:
            os.unlink(requirements.name)

    def pip_43(self, prefix: Path, requirements: str, workdir: Path, env: dict[str, str]) -> None:
        """conda 4.3 ran `python bin/pip --disable-pip-version-check install -r FILE` on the terminal."""
        pip = prefix / "bin" / "pip"
        if not pip.is_file():
            return
        args = [str(prefix / "bin" / "python"), str(pip), "--disable-pip-version-check", "install", "-r", requirements]
        if subprocess.run(args, cwd=workdir, env=env).returncode:
            raise self.value_error("pip returned an error")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def extract_lock(pkgs: Path) -> Iterator[bool]:
    """The shared-cache race (conda #13037, #9484) made deterministic: True unless another stand-in is
    extracting into `pkgs` right now. In a test of the race ($CONDAQA_STANDIN_RACE=1) the holder keeps
    the cache until the other has met it, however late that one starts (at most a minute)."""
    pkgs.mkdir(parents=True, exist_ok=True)
    with open(pkgs / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            (pkgs / CONTENDER).touch()
            yield False
            return
        (pkgs / CONTENDER).unlink(missing_ok=True)
        try:
            yield True
        finally:
            deadline = time.monotonic() + 60
            while RACE and not (pkgs / CONTENDER).exists() and time.monotonic() < deadline:
                time.sleep(0.01)


def linked_records(prefix: Path, index: Index) -> list[rattler.PrefixRecord]:
    """The prefix's records for py-rattler, each with its archive's sha256: py-rattler relinks a package whose
    record has none (as conda 4.3 writes them), which conda never does."""
    found = []
    with tempfile.TemporaryDirectory() as scratch:
        for path in sorted((prefix / "conda-meta").glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            if "sha256" not in data and (sha256 := index.entries.get(str(data.get("url")), {}).get("sha256")):
                data["sha256"] = sha256
            copy = Path(scratch) / path.name
            copy.write_text(json.dumps(data), encoding="utf-8")
            found.append(rattler.PrefixRecord.from_path(copy))
    return found


def compile_pyc(prefix: Path, records: list[rattler.RepoDataRecord], added: list[rattler.RepoDataRecord]
                ) -> dict[str, list[str]]:
    """Compile the site-packages .py files of the new noarch:python packages with the prefix's python, as conda
    does at link time (`python -Wi -m compileall -q -l -i LIST -j 0`); the .pyc paths made, by dist."""
    python = next((r for r in records if r.name.normalized == "python"), None)
    if python is None:
        return {}
    major, minor = str(python.version).split(".")[:2]
    site = f"lib/python{major}.{minor}/site-packages/"
    sources: dict[str, list[str]] = {}
    for record in added:
        if not record.noarch.python:
            continue
        meta = json.loads((prefix / "conda-meta" / f"{dist(record)}.json").read_text(encoding="utf-8"))
        sources[dist(record)] = [p["_path"] for p in meta.get("paths_data", {}).get("paths", [])
                                 if p["_path"].startswith(site) and p["_path"].endswith(".py")]
    todo = [path for paths in sources.values() for path in paths]
    if not todo:
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as listing:
        listing.write("".join(f"{path}\n" for path in todo))
    try:
        command = [str(prefix / "bin" / "python"), "-Wi", "-m", "compileall", "-q", "-l", "-i", listing.name]
        command += ["-j", "0"] if (int(major), int(minor)) >= (3, 6) else []
        subprocess.run(command, cwd=prefix, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        os.unlink(listing.name)

    def pyc_path(py: str) -> str:
        folder, _, file = py.rpartition("/")
        return f"{folder}/__pycache__/{file[:-3]}.cpython-{major}{minor}.pyc"

    return {d: [pyc_path(p) for p in paths if (prefix / pyc_path(p)).is_file()] for d, paths in sources.items()}
