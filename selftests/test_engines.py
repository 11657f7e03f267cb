"""The engines: the registry, the engine worker, and the conda engine driven for real.

The conda engine runs the qa installation's own bin/conda. No conda exists here, so that is the
stand-in of standins/conda_standin.py, which plays what conda 4.8.5 and 25.11.1 printed and wrote
(records, history, package cache with its extraction race, ~/.condarc, ~/.conda/environments.txt,
the notices cache) with py-rattler doing the solving and linking, on the demo site. Also here: the
preflight over channels served by HTTP (remote channels), new installations made by an installer
with the real installers' interface, and which conda an installation has.
"""

from __future__ import annotations

import contextlib
import ensurepip
import functools
import http.server
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_sites import make_site
from standins.conda_standin import install

from condaqa import channels, fingerprint, worker
from condaqa.cli import main
from condaqa.engines import ENGINES, Engine, conda, get_engine
from condaqa.errors import BuildError, ConfigError
from condaqa.manifest import Environment, load_manifest
from condaqa.plan import planning
from condaqa.plan.findings import load_findings
from condaqa.plan.model import BuildPlan
from condaqa.plan.rules import Context, conda_version
from condaqa.prefix import read_prefix
from condaqa.qualification import builds, store
from condaqa.replication.replicate import replicate
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Installation, Site
from condaqa.triage import classify_build
from condaqa.vocab import Category, Rule, Severity, Stage

STANDINS = Path(__file__).resolve().parent / "standins"
PY = ".".join(map(str, sys.version_info[:3]))
PIP = ensurepip.version()  # the pip wheel this interpreter bundles, which the demo packages


# -- the registry and the worker ----------------------------------------------------------------


def test_every_registered_engine_imports_and_is_an_engine() -> None:
    for name, module in ENGINES.items():
        importlib.import_module(module)
        assert isinstance(get_engine(name), Engine) and get_engine(name).name == name


def test_unknown_engine_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown engine 'pixi'; known engines: rattler, conda"):
        get_engine("pixi")


def test_a_call_whose_child_dies_names_the_exit_code() -> None:
    with pytest.raises(BuildError, match=r"the engine process died \(exit code 3\)"):
        worker.call(os._exit, 3)


def test_py_rattlers_and_the_disks_errors_fail_the_build_and_a_bug_is_raised_as_one() -> None:
    import rattler

    with pytest.raises(BuildError, match="InvalidVersionError") as caught:
        worker.call(rattler.Version, "1..!")
    assert caught.value.stage is Stage.ENGINE
    with pytest.raises(BuildError, match="FileNotFoundError"):
        worker.call(open, "/nonexistent/condaqa")
    with pytest.raises(worker.EngineBug, match=r"(?s)please report this.*Traceback.*ValueError: invalid literal"):
        worker.call(int, "not a number")


def test_after_a_dead_child_the_next_call_starts_another() -> None:
    dead = worker.call(os.getpid)
    with pytest.raises(BuildError, match="died"):
        worker.call(os._exit, 3)
    assert worker.call(os.getpid) not in (dead, os.getpid())


def test_a_call_past_its_timeout_is_stopped_and_its_child_killed() -> None:
    before = worker.call(os.getpid)
    with pytest.raises(BuildError, match="did not answer within 1s and was stopped") as caught:
        worker.call(time.sleep, 60, timeout=1)
    assert caught.value.stage is Stage.ENGINE
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)
    assert worker.call(os.getpid) != before


# -- the conda engine on the demo site, through the conda stand-in ------------------------------


def conda_site(site: Site, version: str) -> Site:
    """The demo site with engine = "conda" and the stand-in of conda `version` as qa's bin/conda."""
    install(site.root / "v4.8", version)
    return replace(site, engine="conda")


def env_named(site: Site, name: str) -> Environment:
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def override(site: Site, env: str, conda_specs: list[str], pip: list[str] | None = None) -> None:
    spec = {"name": env, "channels": ["main", "mpc"], "dependencies": [*conda_specs, *([{"pip": pip}] if pip else [])]}
    path = planning.override_path(site, env)
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")


def records(prefix: Path) -> dict[str, dict[str, object]]:
    return {p.name.rsplit("-", 2)[0]: json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json")}


def history_blocks(prefix: Path) -> list[list[str]]:
    return [block.splitlines()[1:] for block in (prefix / "conda-meta" / "history").read_text().split("==> ")[1:]]


def listed(site: Site) -> list[str]:
    """What the conda runs listed in the private ~/.conda/environments.txt."""
    path = conda.home(site, site.qa_installation()) / ".conda" / "environments.txt"
    return path.read_text().splitlines() if path.is_file() else []


def test_conda_engine_needs_a_conda(demo_site: Site) -> None:
    site = replace(demo_site, engine="conda")
    with pytest.raises(BuildError, match="has neither conda nor mamba") as caught:
        replicate(site, sandbox_for(site), env_named(site, "survey_weights"))
    assert caught.value.stage is Stage.ENGINE


def test_conda_25_builds_in_its_own_home(demo_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoker = tmp_path / "invoker"  # the HOME of whoever runs condaqa, with a ~/.condarc of their own
    invoker.mkdir()
    (invoker / ".condarc").write_text("create_default_packages:\n  - datefmt\n")
    monkeypatch.setenv("HOME", str(invoker))
    site = conda_site(demo_site, "25.11.1")
    built = replicate(site, sandbox_for(site), env_named(site, "survey_weights"))
    prefix, qa = built.prefix, site.qa_installation().path

    found = records(prefix)
    assert "datefmt" not in found  # the invoker's create_default_packages did not reach qa
    tabular = found["tabular"]
    assert tabular["requested_spec"] == "tabular=2.0.0" and tabular["package_type"] == "noarch_python"
    assert tabular["channel"] == f"{site.channel_urls()[0]}/noarch"
    assert tabular["link"] == {"source": str(qa / "pkgs" / "tabular-2.0.0-pyh_0"), "type": 1}
    assert (prefix / "conda-meta" / "created_at").is_file()
    assert [d.name for d in read_prefix(prefix).pip] == ["surveyweights"]  # the pip section, after conda
    (block,) = history_blocks(prefix)
    urls = " ".join(f"-c {url}" for url in site.channel_urls())
    assert block[:2] == [f"# cmd: {qa}/bin/conda create --yes --quiet --prefix {prefix} --override-channels {urls} "
                         f"pip={PIP} python={PY} tabular=2.0.0", "# conda version: 25.11.1"]
    assert f"+{site.channel_urls()[0]}/noarch::tabular-2.0.0-pyh_0" in block
    assert block[-1] == f"# update specs: ['pip={PIP}', 'python={PY}', 'tabular=2.0.0']"

    assert listed(site) == [str(prefix)]
    private = conda.home(site, site.qa_installation())
    assert (private / ".cache" / "conda" / "notices" / "notices.cache").is_file()
    assert [p.name for p in invoker.rglob("*")] == [".condarc"]  # no environments.txt, no notices cache there

    # A rebuild removes the old prefix first: conda's list of environments must not keep it when the
    # new build fails before conda creates the prefix again.
    override(site, "survey_weights", ["python", "pip", "linkage=2.2.0", "ipumsdata=0.4.1"])
    with pytest.raises(BuildError) as caught:
        replicate(site, sandbox_for(site), env_named(site, "survey_weights"), rebuild=True)
    assert not prefix.exists() and listed(site) == []
    failure = classify_build("survey_weights", caught.value)
    assert (caught.value.stage, failure.category) == (Stage.SOLVE, Category.UNSATISFIABLE)
    first = failure.detail.splitlines()[0]
    assert first.startswith("UnsatisfiableError: The following specifications were found to be incompatible with "
                            "each other: ") and "ipumsdata (" in first
    assert "linkage=2.2.0 -> ipumsdata[version='>=0.5']" in first


def test_conda_4_8_builds_and_its_python_limit_is_a_preflight_error(demo_site: Site) -> None:
    site = conda_site(demo_site, "4.8.5")
    env = env_named(site, "nhis_reformat")
    with pytest.raises(BuildError) as caught:  # exported with python=3.11.7, which conda 4.8 cannot handle
        replicate(site, sandbox_for(site), env)
    assert caught.value.stage is Stage.PREFLIGHT
    assert f"python={PY} needs conda 4.11 or newer; the qa installation has conda 4.8.5" in str(caught.value)
    assert "/bin/conda create" not in Path(caught.value.log or "").read_text()

    # Unpinned, the stand-in takes the one python the channel has (real conda 4.8 would misplace
    # python 3.10+ packages: the reason for the preflight rule); the records and history are 4.8's.
    override(site, "nhis_reformat", ["python", f"pip={PIP}", "tabular=1.1.0", "fixedwidth=0.4.0"],
             ["codebook==1.2.0"])
    built = replicate(site, sandbox_for(site), env)
    tabular = records(built.prefix)["tabular"]
    assert tabular["requested_spec"] == "tabular=1.1.0" and "package_type" not in tabular
    assert not (built.prefix / "conda-meta" / "created_at").exists()
    (block,) = history_blocks(built.prefix)
    assert block[1] == "# conda version: 4.8.5" and block[-1].startswith("# update specs: [")
    assert [d.name for d in read_prefix(built.prefix).pip] == ["codebook"]


def test_a_missing_version_stops_at_preflight_and_conda_says_the_same(
        demo_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site = replace(conda_site(demo_site, "25.11.1"), rescue=False)  # ipumsdata 0.4.0 is in current's cache: no rescue
    planning.override_path(site, "missing_pin").unlink(missing_ok=True)  # the export: ipumsdata=0.4.0 is withdrawn
    env = env_named(site, "missing_pin")
    with pytest.raises(BuildError) as caught:
        builds.build(site, sandbox_for(site), env)
    saved = load_findings(site, "missing_pin")
    found = classify_build("missing_pin", caught.value, saved.findings if saved else ())
    assert (caught.value.stage, found.category) == (Stage.PREFLIGHT, Category.MISSING_VERSION)
    assert "ipumsdata=0.4.0" in found.detail and "0.4.1, 0.5.0" in found.detail
    assert "/bin/conda create" not in Path(caught.value.log or "").read_text()

    class Unreadable(channels.RepodataIndex):
        def __init__(self, site: Site) -> None:
            super().__init__(site)
            self.unreadable = {c: "the channel's repodata is not available (a test)" for c in site.channels}

    monkeypatch.setattr(planning, "RepodataIndex", Unreadable)  # the preflight cannot tell: conda has to say it
    with pytest.raises(BuildError) as caught:
        builds.build(site, sandbox_for(site), env)
    found = classify_build("missing_pin", caught.value)
    assert (caught.value.stage, found.category) == (Stage.SOLVE, Category.MISSING_VERSION)
    first = "PackagesNotFoundError: The following packages are not available from current channels: ipumsdata=0.4.0"
    assert found.detail.splitlines()[0] == first
    result = store.load(site, site.qa_installation().name, "missing_pin")
    assert result is not None and result.build is not None
    assert (result.build.category, result.build.error) == ("missing-version", first)  # the summary's first error
    log = Path(caught.value.log or "").read_text()
    assert "conda create failed (exit code 1):\nPackagesNotFoundError" in log and "[exit code 1 after " in log
    assert not site.qa_installation().env_prefix("missing_pin").exists()


def test_a_pip_failure_after_conda_is_pip_failed(demo_site: Site) -> None:
    site = conda_site(demo_site, "25.11.1")
    override(site, "noarch_in_pip", ["python", "pip", "tabular=1.1.0"], ["codebook==9.9"])
    with pytest.raises(BuildError) as caught:
        replicate(site, sandbox_for(site), env_named(site, "noarch_in_pip"))
    found = classify_build("noarch_in_pip", caught.value)
    assert (caught.value.stage, found.category) == (Stage.PIP, Category.PIP_FAILED)
    assert found.detail.startswith("pip could not install codebook==9.9:") and "from versions: 1.2.0" in found.detail
    assert "tabular" in records(site.qa_installation().env_prefix("noarch_in_pip"))  # conda's part was built


def test_legacy_packages_are_added_with_freeze_installed(demo_site: Site) -> None:
    site = conda_site(demo_site, "25.11.1")
    built = replicate(site, sandbox_for(site), env_named(site, "legacy_noarch"))
    log, qa = built.log.read_text(), site.qa_installation().path
    assert f"{qa}/bin/conda install --yes --quiet --prefix {built.prefix} --override-channels" in log
    assert "--freeze-installed varlabels=0.2.0" in log
    create, add = history_blocks(built.prefix)
    assert add[0].endswith("--freeze-installed varlabels=0.2.0") and add[1] == "# conda version: 25.11.1"
    assert add[2:] == [f"+{site.channel_urls()[1]}/noarch::varlabels-0.2.0-pyh_0",
                       "# update specs: ['varlabels=0.2.0']"]
    assert not any("varlabels" in line for line in create)
    assert records(built.prefix)["varlabels"]["requested_spec"] == "varlabels=0.2.0"


def test_two_builds_at_once_share_the_package_cache_safely(demo_site: Site, tmp_path: Path) -> None:
    site = conda_site(demo_site, "25.11.1")
    site_file = site.file.with_name("site-conda.toml")
    site_file.write_text(site.file.read_text().replace('engine = "rattler"', 'engine = "conda"'))
    cli = "import sys; from condaqa.cli import main; sys.exit(main(sys.argv[1:]))"
    envs = ("listed_twice", "git_installed")
    runs = [subprocess.Popen([sys.executable, "-c", cli, "--site", str(site_file), "replicate", "--env", env],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path) for env in envs]
    said = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], said
    for env in envs:
        assert "tabular" in records(site.qa_installation().env_prefix(env))

    # Without condaqa's lock, the same conda started twice on one fresh cache breaks one of the two.
    race = site.root / "race"
    conda_bin = install(race, "25.11.1")
    (race / ".condarc").write_text((site.root / "v4.8" / ".condarc").read_text())
    environ = {**conda.environ(site, Installation("race", race)), "CONDAQA_STANDIN_RACE": "1"}  # met, however late
    argv = [[str(conda_bin), "create", "--yes", "--quiet", "--prefix", str(race / "envs" / env), "--override-channels",
             "-c", site.channel_urls()[0], "python", "pip", "tabular=2.0.0"] for env in ("one", "two")]
    both = [subprocess.Popen(a, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in argv]
    outcomes = [(run.communicate(timeout=600)[1], run.returncode) for run in both]
    assert sorted(code for _, code in outcomes) == [0, 1]
    assert next(err for err, code in outcomes if code).startswith("\nCondaVerificationError: The package for ")


# -- which conda an installation has --------------------------------------------------------------


def test_conda_version_without_a_record_asks_bin_conda(tmp_path: Path) -> None:
    installation = tmp_path / "fx"
    install(installation, "4.8.5")
    assert Installation("fx", installation).conda_version() == "4.8.5"  # from conda-meta/conda-4.8.5-py_0.json
    (installation / "conda-meta" / "conda-4.8.5-py_0.json").unlink()
    assert Installation("fx", installation).conda_version() == "4.8.5"  # from `bin/conda --version`
    (installation / "bin" / "conda").unlink()
    assert Installation("fx", installation).conda_version() is None


def test_python_3_11_with_conda_4_8_is_an_error_finding() -> None:
    plan = BuildPlan("env", ("python=3.11", "pip"))
    _, found = conda_version(plan, Context("env", conda_version="4.8.5"))
    assert [(f.rule, f.severity, f.package) for f in found] == [(Rule.CONDA_VERSION, Severity.ERROR, "python")]
    assert "python=3.11 needs conda 4.11 or newer; the qa installation has conda 4.8.5" in found[0].reason
    assert found[0].hint == 'build it with engine = "rattler", or install a conda of 4.11 or newer as qa'
    assert conda_version(plan, Context("env", conda_version="25.11.1"))[1] == []
    assert conda_version(BuildPlan("env", ("python=3.9",)), Context("env", conda_version="4.8.5"))[1] == []


# -- new installations from an installer ------------------------------------------------------------

# What a constructor-made installer (Miniconda, Miniforge) does with `bash FILE -b -p PREFIX`, as far as
# condaqa sees it: batch mode only here, an existing prefix refused unless -u/-f, exit 1 on any error.
INSTALLER = r"""#!/bin/bash
echo "$@" >> "$(dirname "$0")/installer-ran"
BATCH=0; FORCE=0; PREFIX="$HOME/miniforge3"
while getopts "bifup:sktcmh" x; do
    case "$x" in
        b) BATCH=1;;
        f|u) FORCE=1;;
        p) PREFIX="$OPTARG";;
        h) echo "usage: $0 [options]"; exit 2;;
        i|s|k|t|c|m) ;;
        ?) echo "ERROR: did not recognize option '$x', please try -h" >&2; exit 1;;
    esac
done
[ "$BATCH" = 1 ] || { echo "ERROR: this stand-in plays batch mode (-b) only" >&2; exit 1; }
if [ "$FORCE" = 0 ] && [ -e "$PREFIX" ]; then
    printf "ERROR: File or directory already exists: '%s'\n" "$PREFIX" >&2
    printf "If you want to update an existing installation, use the -u option.\n" >&2
    exit 1
fi
echo "PREFIX=$PREFIX"
mkdir -p "$PREFIX/pkgs" || exit 1
@PYTHON@ -c 'import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; from conda_standin import install
install(Path(sys.argv[2]), sys.argv[3])' @STANDINS@ "$PREFIX" @VERSION@ || exit 1
touch "$PREFIX/conda-meta/history"
printf 'channels:\n  - conda-forge\n' > "$PREFIX/.condarc"
echo "installation finished."
"""


def installer(folder: Path, version: str = "25.11.1") -> Path:
    path = folder / "Miniforge3-Linux-x86_64.sh"
    text = INSTALLER.replace("@PYTHON@", sys.executable).replace("@STANDINS@", str(STANDINS))
    path.write_text(text.replace("@VERSION@", version), encoding="utf-8")
    return path


def test_new_installation_runs_an_installer_with_the_real_interface(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path)
    script = installer(tmp_path)
    assert main(["--site", str(site.file), "new-installation", "v5", "--installer", str(script)]) == 0
    target = site.root / "v5"
    assert os.readlink(site.qa_link) == "v5" and (target / "envs").is_dir()
    assert (tmp_path / "installer-ran").read_text() == f"-b -p {target}\n"
    assert yaml.safe_load((target / ".condarc").read_text()) == {"channels": site.channel_urls(),
                                                                 "channel_priority": "strict"}
    assert site.installation("qa").conda_version() == "25.11.1"
    capsys.readouterr()

    (site.root / "v6").mkdir()  # an installer would refuse it; condaqa does before running one
    assert main(["--site", str(site.file), "new-installation", "v6", "--installer", str(script)]) == 2
    assert f"{site.root}/v6: already exists" in capsys.readouterr().err
    assert (tmp_path / "installer-ran").read_text() == f"-b -p {target}\n"
    refused = subprocess.run(["bash", str(script), "-b", "-p", str(site.root / "v6")], capture_output=True, text=True)
    assert (refused.returncode, refused.stderr) == (1, f"ERROR: File or directory already exists: '{site.root}/v6'\n"
                                                       "If you want to update an existing installation, use the -u "
                                                       "option.\n")

    (tmp_path / "broken").mkdir()
    broken = installer(tmp_path / "broken", version="9.9.9")  # fails half-way, leaving a partial prefix
    assert main(["--site", str(site.file), "new-installation", "v7", "--installer", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"bash {broken} -b -p {site.root}/v7 failed (exit 1): " in err and "no stand-in for conda 9.9.9" in err
    assert f"remove the partial {site.root}/v7 by hand before retrying" in err
    assert os.readlink(site.qa_link) == "v5"


# -- the preflight over channels served by HTTP ------------------------------------------------------


class _Counting(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


Serve = Callable[[Path], tuple[str, list[str]]]  # serve(folder) -> (base URL, the request paths seen)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """serve(folder) -> (base URL, the request paths seen): an HTTP server on 127.0.0.1 in a thread."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> tuple[str, list[str]]:
        seen: list[str] = []
        handler = type("Handler", (_Counting,), {"requests": seen})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def remote(site: Site, base: str) -> Site:
    return replace(site, channels=tuple(f"{base}/{name}" for name in site.channels))


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new condaqa process knows of remote channels: nothing (a new memo, a new engine process)."""
    monkeypatch.setattr(channels, "_memos", {})
    worker.stop()


def test_remote_repodata_is_fetched_once_and_kept(demo_site: Site, serve: Serve, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base, seen = serve(demo_site.root)
    site = replace(remote(demo_site, base), root=tmp_path)  # its state folder is the test's own
    index = channels.RepodataIndex(site)
    assert index.lookup("ipumsdata").by_channel == {f"{base}/mpc": ("0.4.1", "0.5.0")}
    assert "tabular" in index.names() and index.noarch_versions("tabular") == {"1.0.0", "1.1.0", "2.0.0"}
    channels.RepodataIndex(site)
    assert len(seen) == 4 and len(set(seen)) == 4  # main and mpc, linux-64 and noarch, once per process
    offline = replace(site, offline=True)
    new_process(monkeypatch)  # offline: the copy is kept in the state folder
    assert channels.RepodataIndex(offline).lookup("ipumsdata").all_versions() == ["0.4.1", "0.5.0"]
    shutil.rmtree(site.state_dir / "repodata")
    new_process(monkeypatch)  # and there only
    assert "no copy of" in channels.RepodataIndex(offline).unreadable[f"{base}/mpc"]
    assert len(seen) == 4


def engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the channels ask the engine process from here on, by function, with nothing this process
    learned of channels before, and every repodata file old enough to be known again by what it is."""
    monkeypatch.setattr(channels, "_memos", {})
    monkeypatch.setattr(fingerprint, "_SETTLED_NS", 0)  # written a moment ago by the test; in a run they are old
    asked: list[str] = []
    real = worker.call

    def counted(function: Callable[..., object], *args: object, **kwargs: Any) -> object:
        asked.append(function.__name__)
        return real(function, *args, **kwargs)

    monkeypatch.setattr(worker, "call", counted)
    return asked


def test_a_local_channel_is_read_once_a_process_while_its_repodata_is_unchanged(
        demo_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = engine_calls(monkeypatch)
    first = channels.RepodataIndex(demo_site)
    assert first.lookup("ipumsdata").all_versions() == ["0.4.1", "0.5.0"]
    before = len(asked)
    assert before and "_read_versions" in asked

    again = channels.RepodataIndex(demo_site)  # each plan makes an index of its own

    assert again.lookup("ipumsdata").all_versions() == ["0.4.1", "0.5.0"] and again.names() == first.names()
    assert len(asked) == before


def test_a_local_channel_indexed_again_during_a_run_is_read_again(demo_site: Site,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """ROOT/rescue is indexed again while a run goes on: what an earlier plan read of it must not hide that."""
    asked = engine_calls(monkeypatch)
    assert channels.RepodataIndex(demo_site).lookup("ipumsdata").all_versions() == ["0.4.1", "0.5.0"]
    repodata = demo_site.root / "mpc" / "noarch" / "repodata.json"
    index = json.loads(repodata.read_text())
    records = index["packages"]  # the demo's are .tar.bz2
    newest = next(f for f, r in records.items() if r["name"] == "ipumsdata" and r["version"] == "0.5.0")
    records[newest.replace("0.5.0", "0.6.0")] = {**records[newest], "version": "0.6.0"}
    repodata.write_text(json.dumps(index))
    before = len(asked)

    again = channels.RepodataIndex(demo_site)

    assert again.lookup("ipumsdata").all_versions() == ["0.4.1", "0.5.0", "0.6.0"]
    assert asked[before:].count("_read_names") == 1  # mpc's noarch, read again; the others are as they were


def test_a_missing_version_in_a_remote_channel_stops_at_preflight(demo_site: Site, serve: Serve) -> None:
    base, _ = serve(demo_site.root)
    site = replace(remote(demo_site, base), rescue=False)  # ipumsdata 0.4.0 is in current's cache: no rescue
    planning.override_path(site, "missing_pin").unlink(missing_ok=True)
    with pytest.raises(BuildError) as caught:
        replicate(site, sandbox_for(site), env_named(site, "missing_pin"))
    saved = load_findings(site, "missing_pin")
    found = classify_build("missing_pin", caught.value, saved.findings if saved else ())
    assert (caught.value.stage, found.category) == (Stage.PREFLIGHT, Category.MISSING_VERSION)
    assert f"ipumsdata=0.4.0: no such version in {base}/mpc" in found.detail and "0.4.1, 0.5.0" in found.detail


def test_offline_preflight_reads_the_kept_copy(demo_site: Site, serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    base, seen = serve(demo_site.root)
    site = remote(demo_site, base)
    channels.RepodataIndex(site)
    new_process(monkeypatch)  # with the network gone
    offline = replace(site, offline=True)
    fetched = len(seen)
    assert channels.RepodataIndex(offline).lookup("ipumsdata").all_versions() == ["0.4.1", "0.5.0"]
    assert len(seen) == fetched
    elsewhere = replace(offline, channels=(f"{base}/other",))
    assert channels.RepodataIndex(elsewhere).unreadable[f"{base}/other"].startswith(
        f"channel '{base}/other': offline = true in {site.file} and no copy of {base}/other/linux-64/repodata.json "
        f"in {site.state_dir}/repodata; run once with offline = false")


def test_a_remote_subdir_that_answers_404_is_absent_online_and_offline(
        demo_site: Site, serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "served" / "nothing").mkdir(parents=True)
    shutil.copytree(demo_site.root / "mpc" / "noarch", tmp_path / "served" / "noarch-only" / "noarch")
    base, seen = serve(tmp_path / "served")
    site = replace(demo_site, root=tmp_path, channels=(f"{base}/noarch-only", f"{base}/nothing"))
    for _ in range(2):
        index = channels.RepodataIndex(site)
        assert index.noarch_versions("ipumsdata") == {"0.4.1", "0.5.0"}
        assert index.unreadable[f"{base}/nothing"] == (
            f"channel '{base}/nothing' ({base}/nothing) has no noarch/repodata.json and lists nothing for "
            f"{channels.qa_platform(site)}: not an indexed conda channel")
    assert sorted(seen) == sorted(f"/{c}/{s}/repodata.json" for c in ("noarch-only", "nothing")
                                  for s in (channels.qa_platform(site), "noarch"))  # each once, 404 or not
    new_process(monkeypatch)  # offline: what answered 404 is still absent
    index = channels.RepodataIndex(replace(site, offline=True))
    assert index.noarch_versions("ipumsdata") == {"0.4.1", "0.5.0"} and set(index.unreadable) == {f"{base}/nothing"}
    assert len(seen) == 4


def test_an_unreachable_channel_is_a_warning_and_planning_goes_on(demo_site: Site, serve: Serve,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = serve(demo_site.root)
    monkeypatch.setattr(channels, "FETCH_TIMEOUT", 1)
    with silent_port() as (port, connections):
        site = replace(demo_site, channels=(f"http://127.0.0.1:{port}/main", f"{base}/mpc"))
        started = time.monotonic()
        for env in ("survey_weights", "hlink"):
            plan, findings = planning.plan_environment(site, env_named(site, env))
            skipped = [f for f in findings if f.action == "preflight cannot tell what is missing"]
            assert [(f.rule, f.package, f.severity) for f in skipped] == [
                (Rule.MISSING_VERSION, f"http://127.0.0.1:{port}/main", Severity.WARNING)]
            assert f"channel 'http://127.0.0.1:{port}/main' is unreachable: http://127.0.0.1:{port}/main/" \
                in skipped[0].reason and "timed out" in skipped[0].reason
            assert plan.conda  # the build goes on, without the preflight
        assert len(connections) == 1 and time.monotonic() - started < 10  # tried once, for one timeout


@contextlib.contextmanager
def silent_port() -> Iterator[tuple[int, list[socket.socket]]]:
    """A local port that accepts connections (kept in the list) and never answers."""
    connections: list[socket.socket] = []
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        listening.settimeout(0.1)

        def accept() -> None:
            while listening.fileno() != -1:
                with contextlib.suppress(OSError):
                    connections.append(listening.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
        yield int(listening.getsockname()[1]), connections
    for connection in connections:
        connection.close()


def test_an_exact_pin_reaches_conda_s_command_line_in_the_form_every_conda_reads() -> None:
    """conda 4.3 reads `alpha ==1.0 py_0` as version "1.0py_0" (selftests/test_realconda_live.py saw it)."""
    assert conda.cli_spec("alpha ==1.0 py_0") == "alpha=1.0=py_0"
    for unchanged in ("tabular=2.0.0", "python >=3.6,<3.7", "zeta 0.9*", "alpha ==1.0", "pip"):
        assert conda.cli_spec(unchanged) == unchanged
