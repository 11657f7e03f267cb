"""condaqa against a real conda 4.3.16, installed from the package registry (condaqa/demo/realconda.py).

Where a python 3.6 exists and the registry answers, one conda root is built per session and copied into
a site of this module's own: ROOT/chan (python 3.6 as a venv-style link, a real pip 9.0.3, alpha ...
zeta), ROOT/wheelhouse, current -> v4.3 and qa -> v4.8, both real conda 4.3.16. Real conda creates the
production environments (`conda install` history entries, a pip section, a package later withdrawn
from the channel); condaqa's export of them is compared with conda's own, its conda engine drives the
real conda as qa's, and real conda reads the site through `current/bin/conda` after a cutover and a
rollback, and an archive of its environments is rebuilt by it from the archive alone. Elsewhere the module
is skipped with the reason; CONDAQA_REALCONDA_REQUIRED=1 (CI) makes
that a failure instead.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml
from fixture_sites import write_project
from helpers_sites import qualify

from condaqa.cli import main
from condaqa.demo import realconda
from condaqa.demo.packages import Package, old_python_package, wheel_to_package, write_package, write_wheel
from condaqa.demo.pythons import find
from condaqa.engines import conda
from condaqa.engines.rattler import index_channel
from condaqa.errors import BuildError, SiteError
from condaqa.manifest import Environment, load_manifest
from condaqa.plan import planning
from condaqa.plan.model import BuildPlan
from condaqa.prefix import read_prefix
from condaqa.replication.replicate import replicate
from condaqa.rescue.repack import Member
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Installation, Site, load_site
from condaqa.sitefile import SITE_ENV_VAR
from condaqa.spec.export import explicit_text, site_channels, spec_from_prefix
from condaqa.triage import classify_build
from condaqa.vocab import Category, Rule, Stage

SUBDIR = "linux-64"
PIP = "9.0.3"  # the last pip whose `pip list` conda 4.3 can read: its env export shows the pip section


def _unavailable(reason: str) -> None:
    if os.environ.get("CONDAQA_REALCONDA_REQUIRED") == "1":
        pytest.fail(f"real conda tier required, but {reason}", pytrace=False)
    pytest.skip(reason)


def _library(name: str, version: str, *depends: str) -> Package:
    source = Member(f"site-packages/{name}/__init__.py", f"VERSION = {version!r}\n".encode())
    return Package(name, version, "py_0", depends=list(depends or ["python"]), files=[source], noarch_python=True)


@dataclass(frozen=True)
class World:
    """What the session built once: the conda venv (cached), the channel, the production installation."""

    cache: Path
    python: Path
    root: Path  # the site root, with chan/, wheelhouse/ and v4.3/ (production, made by real conda)
    home: Path  # the HOME real conda ran with while the production environments were made


def conda_run(installation: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """bin/conda ARGS of `installation`, with HOME `home` and nothing of this process's conda or pip settings."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "PIP_", "PYTHON"))}
    environ.update(HOME=str(home), CONDARC=str(installation / ".condarc"), PIP_CONFIG_FILE="/dev/null")
    return subprocess.run([str(installation / "bin" / "conda"), *args], env=environ, capture_output=True, text=True,
                          timeout=600)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    python = realconda.python36()
    if python is None:
        _unavailable(realconda.unavailable())
    assert python is not None
    base = tmp_path_factory.mktemp("realconda")
    cache = tmp_path_factory.getbasetemp().parent / "realconda-cache"  # shared by the session's workers
    try:
        venv = realconda.conda_venv(cache, python)
    except SiteError as exc:
        _unavailable(str(exc))
    wheels = cache / "wheels"
    if not list(wheels.glob(f"pip-{PIP}-*.whl")):
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--dest", str(wheels), f"pip=={PIP}"], check=True, timeout=300)

    root = base / "site"
    chan = root / "chan"
    interpreter = find("3.6")
    assert interpreter is not None
    write_package(chan, old_python_package(SUBDIR, interpreter.executable, interpreter.version))
    write_package(chan, wheel_to_package(next(wheels.glob(f"pip-{PIP}-*.whl")), build="py_0", depends=["python"]))
    for package in (_library("alpha", "1.0"), _library("alpha", "2.0"),
                    _library("beta", "1.0", "python", "alpha >=1.0"),
                    _library("eta", "1.0", "python", "alpha <2.0"), _library("zeta", "0.9"), _library("zeta", "1.0"),
                    Package("gamma", "0.1", files=[Member("share/gamma/data.txt", b"gamma\n")])):
        write_package(chan, package)
    index_channel(chan)
    write_wheel(root / "wheelhouse", "tinywheel", "0.1", {"tinywheel/__init__.py": "VALUE = 1\n"})

    home = base / "home"
    home.mkdir()
    v43 = realconda.make_root(root / "v4.3", [chan.as_uri()], cache, python)
    ok(conda_run(v43, home, "create", "-y", "-n", "pipenv", "python=3.6", f"pip={PIP}", "beta"))
    pip = [str(v43 / "envs" / "pipenv" / "bin" / "python"), "-m", "pip", "install", "--no-index", "--find-links",
           str(root / "wheelhouse"), "tinywheel==0.1"]
    subprocess.run(pip, check=True, capture_output=True, env={"PATH": os.environ["PATH"], "HOME": str(home)})
    ok(conda_run(v43, home, "create", "-y", "-n", "hist", "python=3.6", "alpha=1.0"))
    for spec in ("beta", "zeta=0.9", "gamma"):
        ok(conda_run(v43, home, "install", "-y", "-n", "hist", spec))
    (chan / "noarch" / "zeta-0.9-py_0.tar.bz2").unlink()  # withdrawn from the channel since
    index_channel(chan)
    return World(cache, python, root, home)


@pytest.fixture
def site(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The world's site, copied: production as real conda made it, a fresh real conda 4.3.16 as qa."""
    root = tmp_path / "site"
    subprocess.run(["cp", "-a", str(world.root), str(root)], check=True)
    realconda.configure(root / "v4.3", [(root / "chan").as_uri()])  # the copy's conda runs the copy's root
    realconda.make_root(root / "v4.8", [(root / "chan").as_uri()], world.cache, world.python)
    os.symlink("v4.3", root / "current")
    os.symlink("v4.8", root / "qa")
    os.symlink("current/envs", root / "envs")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "site.toml").write_text(
        f'[site]\nroot = "{root}"\nchannels = ["chan"]\nengine = "conda"\n'
        'pip_args = ["--no-index", "--find-links", "{root}/wheelhouse"]\n', encoding="utf-8")
    (manifests / "environments.ini").write_text("[environments]\npipenv = REPLICATE\nhist = export\n")
    (manifests / "environments.toml").write_text('[pipenv]\nimports = ["alpha", "beta", "tinywheel"]\n')
    yield load_site(manifests / "site.toml", base=tmp_path)


def env_named(site: Site, name: str) -> Environment:
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def override(site: Site, env: str, conda_specs: list[str], pip: list[str] | None = None) -> None:
    spec = {"name": env, "channels": ["chan"], "dependencies": [*conda_specs, *([{"pip": pip}] if pip else [])]}
    path = planning.override_path(site, env)
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")


# -- (a) condaqa's export against real conda 4.3.16's own ------------------------------------------


@pytest.mark.parametrize("env", ["pipenv", "hist"])
def test_export_matches_conda_4_3_16_env_export_and_list_explicit(world: World, env: str) -> None:
    prefix = world.root / "v4.3" / "envs" / env
    v43 = world.root / "v4.3"
    ours = spec_from_prefix(env, read_prefix(prefix), site_channels(load_site_at(world.root)))
    theirs = yaml.safe_load(ok(conda_run(v43, world.home, "env", "export", "-n", env)))  # 4.3: no -p
    no_builds = yaml.safe_load(ok(conda_run(v43, world.home, "env", "export", "--no-builds", "-n", env)))
    pins = [d for d in theirs["dependencies"] if isinstance(d, str)]
    assert [d for d in no_builds["dependencies"] if isinstance(d, str)] == pins  # 4.3.16's --no-builds keeps builds
    assert all(pin.count("=") == 2 for pin in pins)
    assert ours.dependencies == [pin.rsplit("=", 1)[0] for pin in pins]
    assert ours.channels == [(world.root / "chan").as_uri()]  # 4.3.16 names defaults too, which the site has not
    assert theirs["channels"] == ["defaults", *ours.channels]
    conda_pip: list[str] = next((d["pip"] for d in theirs["dependencies"] if isinstance(d, dict)), [])
    assert ours.pip == conda_pip == (["tinywheel==0.1"] if env == "pipenv" else [])
    if env == "hist":  # made in four steps, one of them a version the channel no longer has
        assert "zeta=0.9" in ours.dependencies and {"alpha=1.0", "beta=1.0", "gamma=0.1"} <= set(ours.dependencies)
        history = (prefix / "conda-meta" / "history").read_text()
        assert history.count("==> ") == 4 and "# install specs: zeta 0.9*" in history
    listed = ok(conda_run(v43, world.home, "list", "--explicit", "-p", str(prefix)))
    assert explicit_text(read_prefix(prefix)) == listed


def load_site_at(root: Path) -> Site:
    manifests = root.parent / "export-manifests"
    manifests.mkdir(exist_ok=True)
    (manifests / "site.toml").write_text(f'[site]\nroot = "{root}"\nchannels = ["chan"]\n', encoding="utf-8")
    (manifests / "environments.ini").write_text("[environments]\npipenv = export\nhist = export\n")
    return load_site(manifests / "site.toml", base=root.parent)


# -- (b) the conda engine driving real conda 4.3.16 as qa's conda ----------------------------------


def records(prefix: Path) -> set[str]:
    return {p.name.rsplit("-", 2)[0] for p in (prefix / "conda-meta").glob("*.json")}


def test_conda_engine_builds_with_real_conda_in_its_own_home(
        site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoker = tmp_path / "invoker"  # whoever runs condaqa, with a ~/.condarc of their own
    invoker.mkdir()
    (invoker / ".condarc").write_text("create_default_packages:\n  - gamma\n")
    monkeypatch.setenv("HOME", str(invoker))
    built = replicate(site, sandbox_for(site), env_named(site, "pipenv"))
    qa = site.qa_installation().path
    assert records(built.prefix) == {"alpha", "beta", "pip", "python"}  # no gamma: the invoker's .condarc stayed out
    assert [d.name for d in read_prefix(built.prefix).pip] == ["tinywheel"]
    history = (built.prefix / "conda-meta" / "history").read_text()
    assert f"# cmd: {qa}/bin/conda create --yes --quiet --prefix {built.prefix} --override-channels" in history
    assert [p.name for p in invoker.rglob("*")] == [".condarc"]  # no environments.txt there
    assert conda_run(qa, conda.home(site, site.qa_installation()), "--version").stdout.strip() == "conda 4.3.16"
    current = spec_from_prefix("pipenv", read_prefix(site.root / "v4.3/envs/pipenv"), site_channels(site))
    rebuilt = spec_from_prefix("pipenv", read_prefix(built.prefix), site_channels(site))
    assert (rebuilt.dependencies, rebuilt.pip) == (current.dependencies, current.pip)


def test_missing_version_unsatisfiable_pair_and_pip_failure(site: Site) -> None:
    qa = site.qa_installation()
    log = io.StringIO()
    with pytest.raises(BuildError) as caught:  # the preflight bypassed: conda 4.3.16 says it in its own words
        conda.ENGINE.create(site, qa, BuildPlan("hist", ("python=3.6", "zeta=0.9")), qa.env_prefix("hist"), log)
    found = classify_build("hist", caught.value)
    assert (caught.value.stage, found.category) == (Stage.SOLVE, Category.MISSING_VERSION)
    assert found.detail.startswith("PackageNotFoundError: Package missing in current linux-64 channels:")
    assert "zeta 0.9*" in found.detail and not qa.env_prefix("hist").exists()

    with pytest.raises(BuildError) as caught:
        conda.ENGINE.create(site, qa, BuildPlan("unsat", ("python=3.6", "alpha=2.0", "eta=1.0")),
                            qa.env_prefix("unsat"), log)
    found = classify_build("unsat", caught.value)
    assert (caught.value.stage, found.category) == (Stage.SOLVE, Category.UNSATISFIABLE)
    assert found.detail.startswith("UnsatisfiableError: The following specifications were found to be in conflict:")
    assert "eta 1.0* -> alpha <2.0" in found.detail and not qa.env_prefix("unsat").exists()

    site.manifest.write_text("[environments]\npipenv = REPLICATE\nhist = REPLICATE\n")
    with pytest.raises(BuildError) as caught:  # the export pins zeta=0.9, withdrawn: without rescue, the preflight
        replicate(replace(site, rescue=False), sandbox_for(site), env_named(site, "hist"))  # stops it
    assert caught.value.stage is Stage.PREFLIGHT and "zeta" in str(caught.value), str(caught.value)
    built = replicate(site, sandbox_for(site), env_named(site, "hist"))  # rescued from production's package cache
    assert "zeta" in records(qa.env_prefix("hist")), built.findings  # into ROOT/rescue, which 4.3.16 reads
    assert [f.package for f in built.findings if f.rule is Rule.RESCUED] == ["zeta"], built.findings

    override(site, "pipenv", ["python=3.6", f"pip={PIP}", "alpha=1.0"], ["tinywheel==9.9"])
    with pytest.raises(BuildError) as caught:
        replicate(site, sandbox_for(site), env_named(site, "pipenv"))
    found = classify_build("pipenv", caught.value)
    assert (caught.value.stage, found.category) == (Stage.PIP, Category.PIP_FAILED)
    assert "tinywheel==9.9" in found.detail and "alpha" in records(qa.env_prefix("pipenv"))  # conda's part was built


def test_two_builds_at_once_share_real_conda_s_package_cache(site: Site, tmp_path: Path) -> None:
    (site.manifest).write_text("[environments]\npipenv = REPLICATE\ntwin = REPLICATE\n")
    twin = site.root / "v4.3" / "envs" / "twin"
    shutil.copytree(site.root / "v4.3" / "envs" / "pipenv", twin, symlinks=True)
    override(site, "twin", ["python=3.6", f"pip={PIP}", "beta=1.0"])
    cli = "import sys; from condaqa.cli import main; sys.exit(main(sys.argv[1:]))"
    runs = [subprocess.Popen([sys.executable, "-c", cli, "--site", str(site.file), "replicate", "--env", env],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
            for env in ("pipenv", "twin")]
    said = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], said
    for env in ("pipenv", "twin"):
        assert {"alpha", "beta", "pip", "python"} <= records(site.qa_installation().env_prefix(env))
    assert not list((site.qa_installation().path / "pkgs").glob("*.tar.bz2.part"))


def test_freeze_installed_is_refused_with_a_clear_error(site: Site) -> None:
    qa = site.qa_installation()
    prefix = qa.env_prefix("pipenv")
    with pytest.raises(BuildError) as caught:
        conda.ENGINE.add(site, qa, "pipenv", prefix, "gamma=0.1", io.StringIO())
    assert caught.value.stage is Stage.POST_STEP
    assert str(caught.value) == ("conda 4.3.16 in v4.8 has no `install --freeze-installed`, so it cannot add "
                                 'gamma=0.1 without changing what is installed; build with engine = "rattler", '
                                 "or install a newer conda as qa")
    assert not prefix.exists()


# -- (c) cutover and rollback, then real conda through current/bin/conda ----------------------------


def test_cutover_and_rollback_then_real_conda_through_current(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    replicate(site, sandbox_for(site), env_named(site, "pipenv"))
    qualify(site, "v4.8", envs=("pipenv",))
    assert main(["--site", str(site.file), "export", "--env", "hist"]) == 0
    assert main(["--site", str(site.file), "cutover"]) == 0, capsys.readouterr()
    home = site.root / "home"
    home.mkdir()
    current = site.root / "current"
    assert os.readlink(current) == "v4.8"
    listed = ok(conda_run(current, home, "env", "list"))
    assert str(site.root / "v4.8" / "envs" / "pipenv") in listed and "hist" not in listed
    info = ok(conda_run(current, home, "info"))
    assert "conda version : 4.3.16" in info and f"root environment : {site.root}/v4.8" in info
    packages = ok(conda_run(current, home, "list", "-n", "pipenv"))
    assert f"# packages in environment at {site.root}/v4.8/envs/pipenv:" in packages
    assert any(line.split()[:2] == ["tinywheel", "0.1"] for line in packages.splitlines())

    assert main(["--site", str(site.file), "rollback"]) == 0
    assert os.readlink(current) == "v4.3"
    listed = ok(conda_run(current, home, "env", "list"))
    assert str(site.root / "v4.3" / "envs" / "hist") in listed
    packages = ok(conda_run(current, home, "list", "-n", "hist"))
    assert any(line.split()[:2] == ["zeta", "0.9"] for line in packages.splitlines())


def test_installation_reads_as_conda_4_3_16(site: Site) -> None:
    assert Installation("v4.3", site.root / "v4.3").conda_version() == realconda.VERSION
    assert replace(site, engine="conda").qa_installation().conda_version() == realconda.VERSION


# -- (d) an archive of real conda's environments, rebuilt by real conda from it alone ------------------


def test_an_archive_is_rebuilt_by_real_conda_4_3_16_after_the_channel_and_wheelhouse_are_gone(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    for env in ("hist", "pipenv"):  # hist holds zeta 0.9, withdrawn; pipenv a pip part from the wheelhouse
        assert main(["--site", str(site.file), "archive", "--env", env]) == 0, capsys.readouterr()
    said = capsys.readouterr().out
    assert "hist: 6 conda package(s) (6 from the package cache file) and 0 wheel(s)" in said, said
    assert "pipenv: 4 conda package(s) (4 from the package cache file) and 1 wheel(s)" in said, said
    for gone in ("chan", "wheelhouse"):
        shutil.rmtree(site.root / gone)
    for env in ("hist", "pipenv"):
        code = main(["--site", str(site.file), "archive", "--verify", env])
        assert code == 0 and "every record matches a rebuild from the archive alone" in capsys.readouterr().out


# -- (e) the demo whose current is a real conda 4.3.16 (condaqa demo --real-conda) -----------------------


def test_the_demo_with_a_real_conda_as_current_qualifies_its_old_python_environments(
        world: World, tmp_path: Path) -> None:
    """`condaqa demo --real-conda`: current is conda 4.3.16, which made the environments on python 2.7 and 3.6
    (its own records and history); the suite qualifies them green in qa."""
    root = tmp_path / "demo"
    cli = [sys.executable, "-m", "condaqa", "demo", "--real-conda", "--root", str(root)]
    xdg = tmp_path / "cache"  # condaqa keeps the venv of conda 4.3.16 in $XDG_CACHE_HOME/condaqa: the tier's
    xdg.mkdir()
    (xdg / "condaqa").symlink_to(world.cache)
    environ = {**os.environ, "XDG_CACHE_HOME": str(xdg)}
    environ.pop(SITE_ENV_VAR, None)
    done = subprocess.run(cli, capture_output=True, text=True, timeout=900, env=environ, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    made = [env for env in ("census_py27", "legacy_py36") if (root / "v4.3" / "envs" / env).is_dir()]
    assert made and f"demo: creating environment {made[0]} in v4.3 with its conda" in done.stderr + done.stdout
    assert conda_run(root / "current", world.home, "--version").stdout.strip() == f"conda {realconda.VERSION}"
    for env in made:
        history = (root / "v4.3" / "envs" / env / "conda-meta" / "history").read_text()
        assert f"# cmd: {root}/v4.3/bin/conda create --yes --quiet --prefix" in history
        assert "# create specs: python " in history  # conda 4.3's own words
    project = tmp_path / "project"
    write_project(project, root)
    qualify_run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-q",
                                  "-k", " or ".join(made)], capture_output=True, text=True, timeout=900,
                                 env=environ, cwd=project)
    assert qualify_run.returncode == 0, qualify_run.stdout[-3000:]
    assert f"{5 * len(made)} passed" in qualify_run.stdout, qualify_run.stdout[-3000:]
