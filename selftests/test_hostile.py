"""Hostile and broken input, one row each: a clear error, bounded cost, nothing written outside the site,
nothing under current changed, nothing run that nobody asked for.

Each case prepares its input (many are generated here: symlinks, binary files, a full disk),
runs the real command in a child process, and checks the exit code, that the message names the
file or path, that no Python traceback was printed, and that neither the folder outside the
site, nor the invoking user's home, nor the installation `current` points to changed. The
README's reliability table is rendered from CASES (test_the_readme_lists_every_case).
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers_sites import make_site, qualify, tree_state

from condaqa import inputs
from condaqa.lifecycle import journal
from condaqa.site import Site

REPO = Path(__file__).resolve().parents[1]
BOMB = """name: bomb
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
dependencies: [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


@dataclass
class World:
    """A site, a folder outside it that hostile input points at, and the invoking user's home."""

    site: Site
    tmp: Path
    outside: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)  # extra variables for the command

    def condaqa(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "condaqa.cli", "--site", str(self.site.file), *args]


Prepare = Callable[[World], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    given: str  # the README's "input"
    does: str  # the README's "what condaqa does"
    prepare: Prepare  # changes the world, returns the command to run
    code: int
    says: tuple[str, ...]  # fragments of the message; {root}, {outside} and {tmp} are filled in
    demo: bool = False  # needs the demo site (real packages) rather than the small one
    unshare: bool = False  # runs in a private mount namespace (a small full tmpfs)
    never: tuple[str, ...] = ()  # in no output and no file the command wrote (secrets)


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _in_toml(world: World, text: str) -> None:
    toml = world.site.manifest.with_suffix(".toml")
    toml.write_text(toml.read_text() + text)


def _full(world: World, folder: Path, argv: list[str]) -> list[str]:
    """`argv` with `folder` replaced by a 256 KiB tmpfs holding a copy of it, filled to the last byte."""
    script = ('set -e; d="$1"; shift; cp -a "$d" "$d.copy"; mount -t tmpfs -o size=256k tmpfs "$d"; '
              'cp -a "$d.copy/." "$d/"; rm -rf "$d.copy"; dd if=/dev/zero of="$d/.fill" bs=4k 2>/dev/null || true; '
              'rc=0; "$@" || rc=$?; for f in "$d"/*; do [ -f "$f" ] && { echo "== $f"; head -c 2000 "$f"; }; done; '
              'exit $rc')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "full", str(folder), *argv]


def alias_bomb(world: World) -> list[str]:
    return [*world.condaqa("sanitize", str(_write(world.tmp / "bomb.yml", BOMB)), "--out", str(world.tmp / "out"))]


def retire_pkgs_symlink(world: World) -> list[str]:
    old = world.site.root / "v4.1"
    shutil.copytree(world.site.root / "v4.8", old, symlinks=True)
    _write(world.outside / "precious" / "data.txt", "keep me")
    shutil.rmtree(old / "pkgs")
    (old / "pkgs").symlink_to(world.outside / "precious")
    return world.condaqa("retire", "v4.1", "--pkgs-only", "--yes")


def kernel_folder_symlink(world: World) -> list[str]:
    qualify(world.site)
    target = world.outside / "kernel-elsewhere"
    shutil.move(str(world.site.kernels_dir / "alpha-pinned"), target)
    (world.site.kernels_dir / "alpha-pinned").symlink_to(target)
    return world.condaqa("cutover")


def sanitize_onto_input(world: World) -> list[str]:
    spec = _write(world.tmp / "in" / "env.yml", "name: env\ndependencies: [python=3.11]\n")
    return world.condaqa("sanitize", str(spec), "--out", str(spec.parent))


def missing_root(world: World) -> list[str]:
    world.site.file.write_text(f'[site]\nroot = "{world.tmp / "no-such-root"}"\n')
    return world.condaqa("new-installation", "v9", "--bare")


def missing_root_cutover(world: World) -> list[str]:
    missing_root(world)
    return world.condaqa("cutover")


def demo_on_a_full_folder(world: World) -> list[str]:
    _write(world.outside / "busy" / "report.txt", "someone's")
    return world.condaqa("demo", "--root", str(world.outside / "busy"))


def binary_site_file(world: World) -> list[str]:
    world.site.file.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    return world.condaqa("status")


def binary_manifest(world: World) -> list[str]:
    world.site.manifest.write_bytes(b"[environments]\nalpha = REPLICATE\n\xff\xfe\x00\x00")
    return world.condaqa("export")


def site_is_a_folder(world: World) -> list[str]:
    return [sys.executable, "-m", "condaqa.cli", "--site", str(world.site.file.parent), "status"]


def long_name(world: World) -> list[str]:
    world.site.manifest.write_text(f"[environments]\nalpha = REPLICATE\n{'x' * 300} = export\n")
    return world.condaqa("export")


def long_name_pytest(world: World) -> list[str]:
    long_name(world)
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "condaqa.suite", "--site",
            str(world.site.file)]


def spaced_installation(world: World) -> list[str]:
    return world.condaqa("new-installation", "a b", "--bare")


def timeout_value(value: str) -> Prepare:
    def prepare(world: World) -> list[str]:
        _in_toml(world, f"timeout = {value}\n")
        return world.condaqa("export")
    return prepare


def default_section(world: World) -> list[str]:
    world.site.manifest.write_text("[DEFAULT]\nsneaky = REPLICATE\n[environments]\nalpha = REPLICATE\n"
                                   "beta = REPLICATE\nlegacy = export\n")
    return world.condaqa("export")


def unknown_kernel(world: World) -> list[str]:
    _in_toml(world, 'kernel = "no-such-kernel"\n')
    return world.condaqa("replicate")


def argv_string(world: World) -> list[str]:
    spec = '{"argv": "python -m ipykernel_launcher", "display_name": "x"}'
    _write(world.site.kernels_dir / "odd" / "kernel.json", spec)
    return world.condaqa("inventory")


def argv_empty(world: World) -> list[str]:
    _write(world.site.kernels_dir / "odd" / "kernel.json", '{"argv": [], "display_name": "x"}')
    return world.condaqa("cutover")


def unreadable_results(world: World) -> list[str]:
    qualify(world.site)
    results = world.site.state_dir / "results"
    for path in [results, *results.rglob("*")]:
        os.chown(path, 12345, 12345)
        path.chmod(0o700 if path.is_dir() else 0o600)
    argv = world.condaqa("status")
    if os.geteuid() == 0:  # root reads anything; take away the capabilities that let it
        argv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", *argv]
    return argv


def status_without_current(world: World) -> list[str]:
    (world.site.root / "current").unlink()
    return world.condaqa("status")


def shell_name(world: World) -> list[str]:
    spec = _write(world.tmp / "shell.yml", 'name: "; rm -rf ~"\ndependencies: [python=3.11]\n')
    return world.condaqa("sanitize", str(spec), "--out", str(world.tmp / "out"))


def shell_entries(world: World) -> list[str]:
    spec = _write(world.tmp / "entries.yml", f'name: ok\nchannels: ["$(touch {world.outside}/pwned)"]\n'
                  "dependencies:\n  - python=3.11; rm -rf ~\n  - pip:\n      - \"pkg==1.0\\n-r /etc/shadow\"\n")
    return world.condaqa("sanitize", str(spec), "--out", str(world.tmp / "out"))


def export_on_a_full_disk(world: World) -> list[str]:
    specs = world.site.specs_dir
    _write(specs / "alpha.yml", "name: alpha\n# the export of last week\ndependencies: [python]\n")
    return _full(world, specs, world.condaqa("export"))


def cutover_on_a_full_disk(world: World) -> list[str]:
    qualify(world.site)
    return _full(world, world.site.kernels_dir, world.condaqa("cutover"))


# --- second round (issue 19): only regular files, every parser bounded, no secret, no write where production lives


SECRET = "PipPassXYZ"
DEEP = "[" * 200_000


def _alpha(world: World) -> Path:
    return world.site.root / "v4.3" / "envs" / "alpha"


def _site_packages(prefix: Path) -> Path:
    return next((prefix / "lib").glob("python*/site-packages"))


def _record(world: World, name: str, text: str) -> Path:
    return _write(_alpha(world) / "conda-meta" / name, text)


def _good_record(world: World) -> None:
    _record(world, "tabular-2.0.0-0.json", '{"name": "tabular", "version": "2.0.0", "build": "0", "channel": "main"}')


def fifo_record(world: World) -> list[str]:
    os.mkfifo(_alpha(world) / "conda-meta" / "zz-1-0.json")
    return world.condaqa("export", "--env", "alpha")


def fifo_metadata(world: World) -> list[str]:
    info = _site_packages(_alpha(world)) / "evil-1.0.dist-info"
    info.mkdir()
    os.mkfifo(info / "METADATA")
    return world.condaqa("export", "--env", "alpha")


def fifo_manifest(world: World) -> list[str]:
    world.site.manifest.unlink()
    os.mkfifo(world.site.manifest)
    return world.condaqa("status")


def socket_kernel(world: World) -> list[str]:
    folder = world.site.kernels_dir / "odd"
    folder.mkdir()
    here = os.getcwd()
    os.chdir(folder)  # a socket's path is at most 108 bytes; the test's folder may be longer
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind("kernel.json")
    finally:
        os.chdir(here)
    return world.condaqa("inventory")


def device_record(world: World) -> list[str]:
    (_alpha(world) / "conda-meta" / "zz-1-0.json").symlink_to("/dev/zero")
    return world.condaqa("export", "--env", "alpha")


def huge_history(world: World) -> list[str]:
    _good_record(world)
    with open(_alpha(world) / "conda-meta" / "history", "w", encoding="utf-8") as history:
        history.write("==> 2020-01-01 00:00:00 <==\n# cmd: conda create -n alpha tabular\n"
                      "# update specs: ['tabular']\n+main/noarch::tabular-2.0.0-0\n")
        history.truncate(300 << 20)  # sparse: 300 MB of history for the reader, no disk for the test
    return world.condaqa("export", "--env", "alpha", "--from-history")


def record_field(key: str, value: str) -> Prepare:
    def prepare(world: World) -> list[str]:
        _good_record(world)
        fields = {"name": '"codebook"', "version": '"1.0"', "build": '"0"', key: value}
        _record(world, "codebook-1.0-0.json", "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}")
        return world.condaqa("export", "--env", "alpha")
    return prepare


def deep_record(world: World) -> list[str]:
    _record(world, "zz-1-0.json", '{"x":' + DEEP)
    return world.condaqa("export", "--env", "alpha")


def deep_direct_url(world: World) -> list[str]:
    info = _site_packages(_alpha(world)) / "deep-1.0.dist-info"
    _write(info / "METADATA", "Metadata-Version: 2.1\nName: deep\nVersion: 1.0\n")
    _write(info / "direct_url.json", '{"url":' + DEEP)
    return world.condaqa("export", "--env", "alpha")


def deep_kernel(world: World) -> list[str]:
    _write(world.site.kernels_dir / "odd" / "kernel.json", '{"argv":' + DEEP)
    return world.condaqa("inventory")


def deep_site_toml(world: World) -> list[str]:
    world.site.file.write_text(world.site.file.read_text() + "channels = " + DEEP + "\n")
    return world.condaqa("status")


def deep_environments_toml(world: World) -> list[str]:
    _in_toml(world, "pip_args = " + DEEP + "\n")
    return world.condaqa("export")


def duplicate_keys(world: World) -> list[str]:
    spec = _write(world.tmp / "twice.yml", "name: first\ndependencies: [python=3.11, numpy=1.26]\n"
                  "name: second\ndependencies: [python=3.12]\n")
    return world.condaqa("sanitize", str(spec), "--out", str(world.tmp / "out"))


def byte_order_marks(world: World) -> list[str]:
    for path in (world.site.file, world.site.manifest):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return world.condaqa("export", "--env", "alpha")


def site_packages_outside(world: World) -> list[str]:
    info = world.outside / "x" / "stranger-6.6.6.dist-info"
    _write(info / "METADATA", "Metadata-Version: 2.1\nName: stranger\nVersion: 6.6.6\n")
    up = "../" * len(_alpha(world).parts)
    _record(world, "python-3.11.0-0.json", '{"name": "python", "version": "3.11.0", "build": "0", '
            f'"python_site_packages_path": "{up}{str(world.outside / "x").lstrip("/")}"}}')
    return world.condaqa("export", "--env", "alpha")


def _fresh_root(world: World, argv: list[str]) -> list[str]:
    """`argv` chrooted into a tmpfs whose folders are the machine's own, bind-mounted: writes at / stay in
    the tmpfs, and what the command made there is listed (the case fails, exit 99, if it made anything)."""
    script = ('set -e; r="$1"; shift; mkdir -p "$r"; mount -t tmpfs tmpfs "$r"; '
              'for d in /*; do if [ -L "$d" ]; then cp -P "$d" "$r$d"; elif [ -d "$d" ]; then mkdir "$r$d"; '
              'mount --rbind "$d" "$r$d"; fi; done; '
              'exec chroot "$r" sh -c \'cd "$0"; rc=0; "$@" || rc=$?; for n in /v9 /qa /.condaqa; do '
              'if [ -e "$n" ]; then echo "made $n"; rc=99; fi; done; exit $rc\' "$PWD" "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "fresh-root",
            str(world.tmp / "fresh-root"), *argv]


def root_is_slash(world: World) -> list[str]:
    world.site.file.write_text('[site]\nroot = "/"\n')
    return _fresh_root(world, world.condaqa("new-installation", "v9", "--bare"))


def killed_cutover(world: World) -> list[str]:
    qualify(world.site)
    environ = {**os.environ, "HOME": str(world.home), journal.CRASH_ENV: "swap"}
    killed = subprocess.run(world.condaqa("cutover"), env=environ, capture_output=True, timeout=120)
    assert killed.returncode == -9, killed
    return world.condaqa("cutover")


def credentials_in_sanitize(world: World) -> list[str]:
    spec = _write(world.tmp / "creds.yml", f"name: creds\nchannels:\n  - https://carol:{SECRET}@conda.example.com/c\n"
                  f"  - https://conda.anaconda.org/t/tk-{SECRET}/private\ndependencies:\n  - python=3.11\n  - pip:\n"
                  f"      - --extra-index-url https://carol:{SECRET}@pypi.example.com/simple\n"
                  f"      - pkg @ https://files.example.com/pkg-1.0-py3-none-any.whl?token={SECRET}\n")
    return world.condaqa("sanitize", str(spec), "--out", str(world.tmp / "out"))


def retire_reached_by_current(world: World) -> list[str]:
    old = world.site.root / "v4.1"
    shutil.copytree(world.site.root / "v4.8", old, symlinks=True)
    (old / "envs" / "alpha").rename(old / "envs" / "legacy_env")
    (world.site.root / "v4.3" / "envs" / "legacy_env").symlink_to("../../v4.1/envs/legacy_env")
    return world.condaqa("retire", "v4.1", "--yes")


def _export_only(world: World) -> list[str]:
    from helpers_sites import make_env

    prefix = world.site.root / "v4.3" / "envs" / "legacy"
    make_env(prefix, "legacy")
    _write(prefix / "conda-meta" / "tabular-2.0.0-0.json", '{"name": "tabular", "version": "2.0.0", "build": "0"}')
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "condaqa.suite", "--site",
            str(world.site.file), "-k", "legacy"]


def specs_link_out(world: World) -> list[str]:
    (world.outside / "specs").mkdir()
    world.site.specs_dir.symlink_to(world.outside / "specs")
    return _export_only(world)


def specs_outside(world: World) -> list[str]:
    (world.outside / "specs").mkdir()
    up = os.path.relpath(world.outside / "specs", world.site.root)
    world.site.file.write_text(world.site.file.read_text() + f'specs = "{up}"\n')
    return _export_only(world)


# --- cases that need real packages: the demo site ----------------------------------------------


def _override(world: World, env: str, body: str) -> None:
    _write(world.site.manifest.parent / "overrides" / f"{env}.yml", f"name: {env}\nchannels: [main, mpc]\n{body}")


def local_folder_source(world: World) -> list[str]:
    """An owner's environment has a package pip-installed from a folder whose build backend writes outside."""
    source = world.outside / "src" / "evilpkg"
    _write(source / "pyproject.toml",
           '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n')
    _write(source / "backend.py", f"open({str(world.outside / 'backend-ran')!r}, 'w').write('ran')\n")
    prefix = world.site.root / "v4.3" / "envs" / "survey_weights"
    info = next((prefix / "lib").glob("python*/site-packages")) / "evilpkg-1.0.dist-info"
    _write(info / "METADATA", "Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n")
    _write(info / "direct_url.json", f'{{"url": "{source.as_uri()}", "dir_info": {{}}}}')
    return world.condaqa("replicate", "--env", "survey_weights")


def newline_in_direct_url(world: World) -> list[str]:
    prefix = world.site.root / "v4.3" / "envs" / "survey_weights"
    info = next((prefix / "lib").glob("python*/site-packages")) / "surveyweights-0.3.0.dist-info"
    _write(info / "direct_url.json", '{"url": "https://example.invalid/sw.whl\\n-r /etc/shadow", "archive_info": {}}')
    return world.condaqa("replicate", "--env", "survey_weights")


def pip_option_reads_a_secret(world: World) -> list[str]:
    secret = _write(world.outside / "secret.txt", "TOPSECRET-TOKEN-123\n")
    _override(world, "survey_weights", f"dependencies:\n  - python\n  - pip\n  - tabular=2.0.0\n  - pip:\n"
                                       f"      - -r {secret}\n      - --extra-index-url https://example.invalid/simple\n"
                                       f"      - surveyweights==0.3.0\n")
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "condaqa.suite", "--site",
            str(world.site.file), "-k", "survey_weights"]


def pip_reads_the_users_config(world: World) -> list[str]:
    _write(world.home / ".config" / "pip" / "pip.conf", f"[global]\nfind-links = {world.outside}/userwheels\n")
    world.env["PIP_FIND_LINKS"] = f"{world.outside}/envwheels"
    return world.condaqa("replicate", "--env", "survey_weights")


def qa_environment_is_a_symlink(world: World) -> list[str]:
    (world.outside / "elsewhere").mkdir()
    (world.site.root / "v4.8" / "envs" / "survey_weights").symlink_to(world.outside / "elsewhere")
    return world.condaqa("replicate", "--env", "survey_weights", "--rebuild")


def replicate_on_a_full_disk(world: World) -> list[str]:
    return _full(world, world.site.root / "v4.8" / "envs", world.condaqa("replicate", "--env", "survey_weights"))


def credentials_in_reports(world: World) -> list[str]:
    """The site's pip_args carry a password, and an override repeats that line: no report, log, result or
    line of `condaqa status` may show it."""
    index = f"https://carol:{SECRET}@pypi.example.com/simple"
    text = world.site.file.read_text()
    world.site.file.write_text(text.replace('pip_args = ["--no-index"', f'pip_args = ["--index-url", "{index}", '
                                            '"--no-index"'))
    _override(world, "survey_weights", f"dependencies:\n  - python\n  - pip\n  - tabular=2.0.0\n  - pip:\n"
                                       f"      - --index-url {index}\n      - surveyweights==0.3.0\n")
    pytest_argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "condaqa.suite", "--site",
                   str(world.site.file), "-k", "survey_weights"]
    return ["sh", "-c", f"{shlex.join(pytest_argv)}; exec {shlex.join(world.condaqa('status'))}"]


def pip_args_write_outside(world: World) -> list[str]:
    toml = world.site.manifest.with_suffix(".toml")
    args = f'pip_args = ["--target", "{world.outside}/t", "--log={world.outside}/pip.log", "-t{world.outside}/t2"]'
    toml.write_text(toml.read_text().replace("[survey_weights]\n", f"[survey_weights]\n{args}\n"))
    return world.condaqa("replicate", "--env", "survey_weights")


CASES = (
    Case("alias-bomb", "a 400-byte environment file of nested YAML aliases (`sanitize`)",
         "refused in milliseconds: environment files never need aliases", alias_bomb, 2,
         ("{tmp}/bomb.yml:3", "YAML alias")),
    Case("retire-pkgs-link", "`retire NAME --pkgs-only` where NAME/pkgs is a link to a folder outside the site",
         "refuses, naming the link and where it leads; nothing deleted", retire_pkgs_symlink, 2,
         ("refusing to delete {root}/v4.1/pkgs", "{outside}/precious")),
    Case("kernel-folder-link", "`cutover` with a kernel folder that is a link to outside the site",
         "refuses before any change, naming the spec", kernel_folder_symlink, 2,
         ("refusing to rewrite the kernel spec {root}/kernels/alpha-pinned/kernel.json",)),
    Case("sanitize-over-input", "`sanitize F --out DIR` where DIR/F's name is F itself",
         "refuses to overwrite an input", sanitize_onto_input, 2, ("{tmp}/in/env.yml: is one of the input files",)),
    Case("no-root-new", "`new-installation` on a site whose root does not exist", "exit 2, creates nothing",
         missing_root, 2, ("{tmp}/no-such-root: the site root does not exist",)),
    Case("no-root-cutover", "`cutover` (or rollback, retire) on a site whose root does not exist",
         "exit 2, no lock file left", missing_root_cutover, 2, ("{tmp}/no-such-root: the site root does not exist",)),
    Case("demo-busy-folder", "`demo --root DIR` on a folder that holds other files", "refuses, leaves no lock file",
         demo_on_a_full_folder, 2, ("{outside}/busy exists but holds no complete demo site",)),
    Case("binary-site", "a binary site.toml", "exit 2 naming the file", binary_site_file, 2,
         ("site.toml: binary data, not a site file",)),
    Case("binary-manifest", "a binary or non-UTF-8 environments.ini", "exit 2 naming the file", binary_manifest, 2,
         ("environments.ini: binary data",)),
    Case("site-folder", "`--site` naming a folder", "exit 2: name the site.toml", site_is_a_folder, 2,
         ("manifests: is a folder, not a site file",)),
    Case("long-name", "a 300-character environment name", "exit 2 with file and line", long_name, 2,
         ("environments.ini:3: bad environment name", "longer than 200 bytes")),
    Case("long-name-pytest", "the same name, met by `pytest`", "a usage error (exit 4), no traceback",
         long_name_pytest, 4, ("environments.ini:3: bad environment name",)),
    Case("spaced-installation", '`new-installation "a b"`', "exit 2: not an installation name", spaced_installation, 2,
         ("'a b' is not a valid installation name: contains whitespace",)),
    *(Case(f"timeout-{v}", f"`timeout = {v}` in environments.toml", "exit 2 with file and line", timeout_value(v), 2,
           ("environments.toml:", "timeout must be a positive number")) for v in ("nan", "inf", "1e300")),
    Case("default-section", "a `[DEFAULT]` section in environments.ini", "exit 2: its keys never become environments",
         default_section, 2, ("environments.ini:1: unknown section [DEFAULT]",)),
    Case("unknown-kernel", '`kernel = "no-such-kernel"` in environments.toml', "exit 2 with file and line",
         unknown_kernel, 2, ("environments.toml:", "kernel = 'no-such-kernel' names no kernel spec")),
    Case("argv-string", "a kernel spec whose argv is a string", "exit 2 naming the kernel.json", argv_string, 2,
         ("{root}/kernels/odd/kernel.json: argv must be a non-empty list of strings",)),
    Case("argv-empty", "a kernel spec whose argv is empty", "exit 2 naming the kernel.json", argv_empty, 2,
         ("{root}/kernels/odd/kernel.json: argv must be a non-empty list of strings",)),
    Case("unreadable-results", "`status` by a user who cannot read the site's results (umask 077)",
         "says which folder it cannot read, exit 0", unreadable_results, 0, ("is not readable by you",)),
    Case("no-current", "`status` on a site whose `current` link is missing", "exit 2 naming the link",
         status_without_current, 2, ("{root}/current: missing or not a symlink",)),
    Case("shell-name", '`name: "; rm -rf ~"` in an environment file', "exit 2: not an environment name", shell_name, 2,
         ("shell.yml: name: '; rm -rf ~' is not an environment name",)),
    Case("shell-entries", "a channel `$(touch x)`, `python=3.11; rm -rf ~`, a newline inside a pip line",
         "each an error finding (exit 1), none run or passed on", shell_entries, 1, ("3 errors",)),
    Case("full-disk-export", "`export` when the disk is full", "exit 2 naming the path; last week's export intact",
         export_on_a_full_disk, 2, ("No space left on device", "alpha.yml", "# the export of last week"),
         unshare=True),
    Case("full-disk-cutover", "`cutover` when the disk holding the kernel specs is full",
         "undone: current and every spec as before, exit 2", cutover_on_a_full_disk, 2,
         ("failed and was undone", "No space left on device"), unshare=True),
    Case("fifo-record", "a FIFO as a conda-meta record (`export`)", "refused at once, naming the FIFO", fifo_record, 2,
         ("{root}/v4.3/envs/alpha/conda-meta/zz-1-0.json: is a FIFO",)),
    Case("fifo-metadata", "a FIFO as a dist-info METADATA (`export`)", "refused at once, naming the FIFO",
         fifo_metadata, 2, ("evil-1.0.dist-info/METADATA: is a FIFO",)),
    Case("fifo-manifest", "a FIFO as manifests/environments.ini (`status`)", "refused at once, naming the FIFO",
         fifo_manifest, 2, ("environments.ini: is a FIFO",)),
    Case("socket-kernel", "a socket where a kernel.json belongs (`inventory`)", "refused, naming the socket",
         socket_kernel, 2, ("{root}/kernels/odd/kernel.json: is a socket",)),
    Case("device-record", "a conda-meta record that is a symlink to /dev/zero", "refused without reading a byte",
         device_record, 2, ("zz-1-0.json: is a character device",)),
    Case("huge-history", "a 300 MB conda-meta/history (`export --from-history`)",
         "refused at once: larger than any history (the cap is in the table above)", huge_history, 2,
         ("conda-meta/history: larger than",)),
    *(Case(f"record-{key}", f"a conda-meta record with `\"{key}\": {value}`", "exit 2 naming the record and the field",
           record_field(key, value), 2, ("codebook-1.0-0.json: not a conda-meta record:",
                                         f"Expected `str`, got `{kind}` - at `$.{where}`"))
      for key, value, kind, where in (("name", '["tabular"]', "array", "name"), ("version", '{"v": 1}', "object",
                                      "version"), ("files", '["a.py", 7]', "int", "files[1]"))),
    Case("deep-record", "a conda-meta record of 200,000 nested `[`", "refused before parsing: nested too deep",
         deep_record, 2, ("zz-1-0.json: nested deeper than",)),
    Case("deep-direct-url", "a PEP 610 direct_url.json of 200,000 nested `[`",
         "read as unreadable: the distribution is exported by its name and version", deep_direct_url, 0,
         ("alpha: {root}/env_specs/alpha.yml",)),
    Case("deep-kernel", "a kernel.json of 200,000 nested `[`", "exit 2 naming the kernel.json", deep_kernel, 2,
         ("{root}/kernels/odd/kernel.json: nested deeper than",)),
    Case("deep-site-toml", "`channels =` and 200,000 `[` in site.toml", "exit 2 naming the file", deep_site_toml, 2,
         ("site.toml: nested deeper than",)),
    Case("deep-environments-toml", "`pip_args =` and 200,000 `[` in environments.toml", "exit 2 naming the file",
         deep_environments_toml, 2, ("environments.toml: nested deeper than",)),
    Case("duplicate-keys", "an environment file with `name:` and `dependencies:` twice (`sanitize`)",
         "exit 2 with file and line: conda refuses duplicate keys too", duplicate_keys, 2,
         ("{tmp}/twice.yml:3", "duplicate key 'name'")),
    Case("byte-order-mark", "a UTF-8 byte order mark at the start of site.toml and environments.ini",
         "read as the same file without it", byte_order_marks, 0, ("alpha: {root}/env_specs/alpha.yml",)),
    Case("site-packages-outside", "`python_site_packages_path` in a python record leading out of the prefix",
         "exit 2 naming the record; nothing read there", site_packages_outside, 2,
         ("python-3.11.0-0.json: python_site_packages_path", "leads out of the prefix")),
    Case("root-is-slash", '`root = "/"` in site.toml, then `new-installation v9 --bare`',
         "exit 2 like every other command: / is no site; nothing created", root_is_slash, 2,
         ("/current: missing or not a symlink",), unshare=True),
    Case("killed-cutover", "`cutover` again after a cutover was killed (SIGKILL) right after the swap",
         "settles it first and says so in a `note:` line", killed_cutover, 2,
         ("note: finished the interrupted cutover v4.3 -> v4.8", "{root}/qa does not exist")),
    Case("credentials-sanitize", "passwords and tokens in channel URLs and pip lines (`sanitize`)",
         "written and printed as `****`: in no spec, findings file or output", credentials_in_sanitize, 1,
         ("{tmp}/out/creds.yml",), never=(SECRET,)),
    Case("retire-reached", "`retire v4.1` while `v4.3/envs/legacy_env -> ../../v4.1/envs/legacy_env` (current)",
         "refuses, naming the link; nothing deleted", retire_reached_by_current, 2,
         ("refusing to retire {root}/v4.1", "{root}/v4.3/envs/legacy_env")),
    Case("export-only-specs-link", "`pytest` with ROOT/env_specs a link to a folder outside the site",
         "the export-only environment's test fails, refused like `condaqa export`; nothing written there",
         specs_link_out, 1, ("refusing to write the export",)),
    Case("export-only-specs-outside", '`pytest` with `specs = "../../outside"` in site.toml',
         "the same refusal", specs_outside, 1, ("refusing to write the export",)),
    Case("local-folder", "a pip package installed from a local folder (PEP 610 dir_info) in an owner's environment",
         "error finding `local-source`: its build code never runs unless environments.toml says local_sources = true",
         local_folder_source, 1, ("{outside}/src/evilpkg", "run that folder's or archive's own build code"),
         demo=True),
    Case("newline-url", "a newline inside a PEP 610 URL", "refused before pip sees it", newline_in_direct_url, 1,
         ("control character",), demo=True),
    Case("pip-options", "`-r SECRET`, `--extra-index-url` lines in an override's pip section",
         "error findings; the secret's contents reach no report, log or result", pip_option_reads_a_secret, 1,
         ("reads the file it names", "adds a package source"), demo=True),
    Case("user-pip-config", "the invoking user's pip.conf and PIP_* variables", "ignored: pip runs --isolated",
         pip_reads_the_users_config, 0, (), demo=True),
    Case("qa-env-link", "a qa environment that is a symlink", "refused (build guard), nothing followed",
         qa_environment_is_a_symlink, 1, ("{root}/v4.8/envs/survey_weights is a symlink",), demo=True),
    Case("full-disk-replicate", "`replicate` when qa's disk is full", "exit 2 naming the path",
         replicate_on_a_full_disk, 2, ("No space left on device",), demo=True, unshare=True),
    Case("credentials-reports", "a password in an index URL of the site's pip_args, repeated in an override",
         "`****` in junit.xml, the summary, logs, findings, results and `condaqa status`", credentials_in_reports, 0,
         ("survey_weights",), demo=True, never=(SECRET,)),
    Case("pip-args-paths", "`--target`, `--log=`, `-t` in an environment's pip_args in environments.toml",
         "error findings naming each option; pip never runs", pip_args_write_outside, 1,
         ("--target", "--log", "-t"), demo=True),
)


def snapshot(*roots: Path) -> dict[str, tuple[int, ...]]:
    """Outside the site and under current nothing may be written, not even a file made and removed again."""
    return {path: st for root in roots for path, st in tree_state(root, folder_times=True).items()}


MEMORY = 2 << 30  # bytes of address space for a command on the small site: a reader that is not bounded fails
SECONDS = 120  # for a command on the small site, which reads and writes a few files: one that hangs fails


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run_case(case: Case, world: World) -> subprocess.CompletedProcess[str]:
    if case.unshare and subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("this machine cannot make a private mount namespace for a full tmpfs")
    argv = case.prepare(world)
    current = Path(os.path.realpath(world.site.current_link)) if world.site.current_link.exists() else world.tmp / "x"
    before = snapshot(world.outside, world.home, current)
    written_before = snapshot(world.tmp, world.site.state_dir)
    environ = {**os.environ, "HOME": str(world.home), **world.env}
    done = subprocess.run(argv, cwd=world.tmp, env=environ, capture_output=True, text=True,
                          timeout=600 if case.demo else SECONDS, preexec_fn=None if case.demo else _bounded)
    words = done.stdout + done.stderr
    assert done.returncode == case.code, words
    for fragment in case.says:
        expected = fragment.format(root=world.site.root, outside=world.outside, tmp=world.tmp)
        assert expected in words, words
    assert "Traceback (most recent call last)" not in words, words
    assert snapshot(world.outside, world.home, current) == before, "something outside the site or under current changed"
    for secret in case.never:
        assert secret not in words, words
        for path in _written(written_before, snapshot(world.tmp, world.site.state_dir)):
            assert secret.encode() not in path.read_bytes(), f"{path} holds {secret}"
    return done


def _written(before: dict[str, tuple[int, ...]], after: dict[str, tuple[int, ...]]) -> list[Path]:
    """The regular files a command made or changed."""
    return [Path(p) for p, st in after.items() if before.get(p) != st and stat.S_ISREG(st[0])]


def _world(site: Site, tmp: Path) -> World:
    outside, home = tmp / "outside", tmp / "home"
    outside.mkdir()
    home.mkdir()
    return World(site, tmp, outside, home)


@pytest.mark.parametrize("case", [c for c in CASES if not c.demo], ids=lambda c: c.id)
def test_hostile_input_on_a_small_site(case: Case, tmp_path: Path) -> None:
    run_case(case, _world(make_site(tmp_path), tmp_path))


@pytest.mark.parametrize("case", [c for c in CASES if c.demo], ids=lambda c: c.id)
def test_hostile_input_on_the_demo_site(case: Case, pip_site: Site, tmp_path: Path) -> None:
    demo_site = pip_site
    done = run_case(case, _world(demo_site, tmp_path))
    if case.id == "local-folder":
        assert not (tmp_path / "outside" / "backend-ran").exists()
    if case.id == "pip-options":
        reports = [*(tmp_path / "reports").rglob("*"), *demo_site.state_dir.rglob("*.json")]
        assert reports and all("TOPSECRET" not in p.read_text() for p in reports if p.is_file())
        assert "TOPSECRET" not in done.stdout + done.stderr
    if case.id == "user-pip-config":
        log = (tmp_path / "reports" / "logs" / "survey_weights.log").read_text()
        assert "userwheels" not in log and "envwheels" not in log and "--isolated" in log


def test_the_readme_lists_every_case() -> None:
    """The README's reliability table is this module's CASES, row for row."""
    table = render_table()
    assert table in (REPO / "README.md").read_text(encoding="utf-8"), "regenerate it: python selftests/test_hostile.py"


def test_the_readme_lists_every_size_cap() -> None:
    """The README's table of size caps is the input policy's, kind for kind."""
    table = render_caps()
    assert table in (REPO / "README.md").read_text(encoding="utf-8"), "regenerate it: python selftests/test_hostile.py"


def render_table() -> str:
    rows = ["| input | what condaqa does | exit |", "|---|---|---|"]
    rows += [f"| {c.given} | {c.does} | {c.code} |" for c in CASES]
    return "\n".join(rows) + "\n"


def render_caps() -> str:
    rows = ["| foreign file | read as | at most |", "|---|---|---|"]
    rows += [f"| {k.files} | {k.what} | {inputs.size(k.limit)} |" for k in inputs.KINDS]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render_caps(), end="\n")
    print(render_table(), end="")
