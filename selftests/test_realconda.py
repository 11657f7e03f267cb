"""condaqa against what real conda wrote and printed (../shared/realconda; its README.md says how).

The conda 4.3.22 and 4.3.31 environments are laid out as prefixes under a site root of this test's
own (ROOT replaced by it in every file, as the recordings' README says), and condaqa's export of
each is compared with conda's own `env export --no-builds` and `list --explicit`. The failure
transcripts of conda 4.8.5, 24.11.3 and 25.11.1 go through condaqa's conda-engine error handling
and triage. CONDAQA_REALCONDA points at another copy of the recordings.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REALCONDA as REAL

from condaqa import proc
from condaqa.cli import main
from condaqa.engines import conda
from condaqa.errors import BuildError
from condaqa.plan.model import BuildPlan
from condaqa.prefix import read_prefix
from condaqa.site import Installation, Site, load_site
from condaqa.spec.export import explicit_text, site_channels, spec_from_prefix
from condaqa.spec.format import dump_spec, parse_spec
from condaqa.triage import classify_build
from condaqa.vocab import Category, Stage

if not REAL.is_dir():
    pytest.skip(f"the real conda recordings are not at {REAL} (set CONDAQA_REALCONDA to a copy)",
                allow_module_level=True)

INSTALLATION = {"4.3.31": "v4.3", "4.3.22": "fx-4.3.22"}  # where each version made its environments
ENVS = ("pip9wheel", "pipfail", "history_env")
PREFIXES = [(version, env) for version in INSTALLATION for env in ENVS]
FAILURES = [(version, name, category) for version in ("4.8.5", "24.11.3", "25.11.1") for name, category in (
    ("03-create-missing-version.json", Category.MISSING_VERSION),
    ("04-create-unsatisfiable.json", Category.UNSATISFIABLE),
    ("05-env-create-pip-failure.json", Category.PIP_FAILED),
)]
PIP_SECTIONS = {"pip9wheel": ["tinywheel==0.1"], "pipfail": ["privwheel==1.0", "tinywheel==0.2"], "history_env": []}


def substituted(path: Path, root: Path) -> str:
    return path.read_text(encoding="utf-8").replace("ROOT", str(root))


def lay_out(root: Path, version: str, env: str) -> Path:
    """The recorded prefix copied to ROOT/<installation>/envs/<env>, ROOT replaced in every file."""
    source = REAL / f"conda-{version}" / env
    prefix = root / INSTALLATION[version] / "envs" / env
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or relative.parts[0] == "outputs":
            continue
        (prefix / relative).parent.mkdir(parents=True, exist_ok=True)
        (prefix / relative).write_text(substituted(path, root), encoding="utf-8")
    return prefix


def output(root: Path, version: str, env: str, name: str) -> str:
    return substituted(REAL / f"conda-{version}" / env / "outputs" / name, root)


def site_at(root: Path) -> Site:
    """A site as the recordings': its one channel is the folder ROOT/mpc, current -> v4.3."""
    manifests = root.parent / "manifests"
    manifests.mkdir(exist_ok=True)
    (manifests / "site.toml").write_text(f'[site]\nroot = "{root}"\nchannels = ["mpc"]\n', encoding="utf-8")
    (manifests / "environments.ini").write_text("[environments]\n" + "".join(f"{e} = export\n" for e in ENVS))
    return load_site(manifests / "site.toml", base=root.parent)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "site"


@pytest.mark.parametrize(("version", "env"), PREFIXES)
def test_export_has_conda_s_no_builds_pins_and_the_pip_section_conda_4_3_loses(root: Path, version: str,
                                                                               env: str) -> None:
    prefix = lay_out(root, version, env)
    spec = spec_from_prefix(env, read_prefix(prefix), site_channels(site_at(root)))
    theirs = yaml.safe_load(output(root, version, env, "env-export-no-builds.yml"))
    conda_pins = [d for d in theirs["dependencies"] if isinstance(d, str)]
    conda_pip: list[str] = next((d["pip"] for d in theirs["dependencies"] if isinstance(d, dict)), [])
    if version == "4.3.22":  # its --no-builds keeps the build strings: the bug the seed migrates away from
        assert all(pin.count("=") == 2 for pin in conda_pins)
        conda_pins = [pin.rsplit("=", 1)[0] for pin in conda_pins]
    assert spec.dependencies == conda_pins and all(pin.count("=") == 1 for pin in spec.dependencies)
    assert spec.channels == theirs["channels"] == [(root / "mpc").as_uri()]  # a folder: its URL, not a bare name
    assert spec.pip == PIP_SECTIONS[env]
    assert conda_pip == ([] if env == "pipfail" else spec.pip)  # conda 4.3 runs `pip list` the way pip 10+ refuses
    again = parse_spec(dump_spec(spec), "export")
    assert (again.channels, again.dependencies, again.pip) == (spec.channels, spec.dependencies, spec.pip)


def test_export_explicit_is_conda_list_explicit(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = site_at(root)
    for env in ENVS:
        lay_out(root, "4.3.31", env)
    (root / "v4.3" / "conda-meta").mkdir()
    (root / "current").symlink_to("v4.3")
    assert main(["--site", str(site.file), "export", "--explicit"]) == 0
    for env in ENVS:
        written = site.specs_dir / "explicit" / f"{env}.txt"
        assert written.read_bytes() == output(root, "4.3.31", env, "list-explicit.txt").encode("utf-8")
    said = capsys.readouterr().out
    assert f"pipfail: {site.specs_dir}/explicit/pipfail.txt (its 2 pip distributions have no place" in said
    assert f"history_env: {site.specs_dir}/explicit/history_env.txt\n" in said
    assert not list(site.specs_dir.glob("*.yml"))  # --explicit writes the explicit lists only

    assert main(["--site", str(site.file), "export", "--from-history", "--env", "history_env"]) == 0
    wanted = yaml.safe_load((site.specs_dir / "from-history" / "history_env.yml").read_text())
    assert wanted["dependencies"] == ["alpha 2.0*", "beta", "delta", "epsilon", "python 3.8*"]
    with pytest.raises(SystemExit) as refused:  # argparse: one kind of export at a time
        main(["--site", str(site.file), "export", "--explicit", "--from-history"])
    assert refused.value.code == 2


@pytest.mark.parametrize("env", ENVS)
def test_explicit_of_conda_4_3_22_prefixes(root: Path, env: str) -> None:
    prefix = lay_out(root, "4.3.22", env)
    assert explicit_text(read_prefix(prefix)) == output(root, "4.3.22", env, "list-explicit.txt")


def transcript(version: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REAL / f"conda-{version}" / "transcripts" / name).read_text(encoding="utf-8"))
    return data


def replaying(installation: Path, recorded: dict[str, Any]) -> None:
    """A bin/conda that prints what conda printed and exits as it did."""
    conda_bin = installation / "bin" / "conda"
    conda_bin.parent.mkdir(parents=True, exist_ok=True)
    out, err = json.dumps(recorded["stdout"]), json.dumps(recorded["stderr"])
    conda_bin.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({out})\nsys.stderr.write({err})\n"
                         f"sys.exit({recorded['exit_code']})\n", encoding="utf-8")
    conda_bin.chmod(0o755)


@pytest.mark.parametrize(("version", "name", "category"), FAILURES)
def test_conda_failures_get_their_category_and_conda_s_own_words(root: Path, version: str, name: str,
                                                                 category: Category) -> None:
    recorded = transcript(version, name)
    done = proc.Finished(tuple(recorded["argv"]), recorded["exit_code"], recorded["stdout"], recorded["stderr"],
                         recorded["seconds"], conda.TIMEOUT)
    what = " ".join(["conda", *recorded["argv"][1:3 if recorded["argv"][1] == "env" else 2]])
    error = conda.failure(done, what, Stage.INSTALL)  # the stage of the command itself, as the engine runs it
    found = classify_build("env", error)
    assert found.category is category
    first = found.detail.splitlines()[0]
    if category is Category.MISSING_VERSION:
        assert error.stage is Stage.SOLVE
        assert first == ("PackagesNotFoundError: The following packages are not available from current channels: "
                         "zeta=0.9")
    elif category is Category.UNSATISFIABLE:
        assert error.stage is Stage.SOLVE
        assert first.startswith("UnsatisfiableError: The following specifications were found to be incompatible "
                                "with each other: ")
        assert "alpha (" in first and "eta=1.0 -> alpha[version='<2.0']" in first and "python (" in first
    else:
        assert error.stage is Stage.PIP
        assert first == ("pip could not install privwheel==9.9: Could not find a version that satisfies the "
                         "requirement privwheel==9.9 (from versions: 1.0)")
        assert "CondaEnvException: Pip failed" in found.detail
    for text in (str(error), found.detail):
        assert not any(mark in text for mark in ("%|", "it/s]", "\b", "Examining", "Building graph", "\r"))
    assert str(error).startswith(f"{what} failed (exit code 1):\n")

    # The same through the engine itself, with a bin/conda that replays the transcript.
    site = site_at(root)
    installation = Installation("fx", root / "fx")
    replaying(installation.path, recorded)
    log = io.StringIO()
    with pytest.raises(BuildError) as caught:
        conda.ENGINE.create(site, installation, BuildPlan("env", ("alpha=1.0",)), installation.env_prefix("env"), log)
    assert caught.value.stage is error.stage
    assert str(caught.value).split("\n", 1)[1] == str(error).split("\n", 1)[1]
    assert "[exit code 1 after " in log.getvalue()
    assert classify_build("env", caught.value).detail.splitlines()[0] == first


def test_the_recordings_are_all_here() -> None:
    """Every prefix and failure transcript the tests above read (a partial copy would pass vacuously)."""
    for version, env in PREFIXES:
        for name in ("env-export-no-builds.yml", "list-explicit.txt"):
            assert (REAL / f"conda-{version}" / env / "outputs" / name).is_file()
    for version, name, _ in FAILURES:
        assert transcript(version, name)["exit_code"] == 1
