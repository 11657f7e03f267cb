"""environments.ini / environments.toml: the seed format, and errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from condaqa.demo import pythons
from condaqa.demo.site import COMPLETE, NOT_ASKED, catalog_digest, ensure_demo, holding
from condaqa.errors import ConfigError, SiteError
from condaqa.inputs import name_problem
from condaqa.manifest import load_manifest, site_manifest, starter_ini
from condaqa.site import DEMO_LEFT_OUT, Site, load_site


def write(tmp_path: Path, ini: str, toml: str | None = None) -> Path:
    path = tmp_path / "environments.ini"
    path.write_text(ini, encoding="utf-8")
    if toml is not None:
        path.with_suffix(".toml").write_text(toml, encoding="utf-8")
    return path


def test_seed_format_with_comments_and_case(tmp_path: Path) -> None:
    ini = write(tmp_path, "# header\n[environments]\nnhis_reformat = REPLICATE\n# old one\n"
                     "Old.Env = Export  # gone\nhlink=replicate\n")
    envs = load_manifest(ini)
    assert [(e.name, e.disposition, e.line) for e in envs] == [
        ("nhis_reformat", "replicate", 3), ("Old.Env", "export", 5), ("hlink", "replicate", 6),
    ]


def test_toml_adds_per_environment_facts(tmp_path: Path) -> None:
    ini = write(tmp_path, "[environments]\na = REPLICATE\nb = export\n",
                '[a]\nowner = "ann"\nimports = ["x", "y"]\nkernel = "k"\npip_args = ["--pre"]\ntimeout = 30\n')
    a, b = load_manifest(ini)
    assert (a.owner, a.imports, a.kernel, a.pip_args, a.timeout) == ("ann", ("x", "y"), "k", ("--pre",), 30.0)
    assert b.imports is None and b.owner == ""


@pytest.mark.parametrize("demo", [True, False])
def test_only_a_demo_site_drops_what_it_was_built_without_from_its_manifest(tmp_path: Path, demo: bool) -> None:
    """The demo holds its old-python environments only where the machine has those pythons; a real site whose
    manifest lists an environment it lacks keeps it, and its qualification says so."""
    write(tmp_path, "[environments]\nhlink = REPLICATE\ncensus_py27 = REPLICATE\n")
    (tmp_path / "site.toml").write_text(f'[site]\nroot = "root"\ndemo = {str(demo).lower()}\n', encoding="utf-8")
    (tmp_path / "root" / ".condaqa").mkdir(parents=True)
    (tmp_path / "root" / ".condaqa" / DEMO_LEFT_OUT).write_text(json.dumps({"census_py27": "no python 2.7 here"}))
    site = load_site(tmp_path / "site.toml")
    assert site.left_out() == ({"census_py27": "no python 2.7 here"} if demo else {})
    assert [e.name for e in site_manifest(site)] == (["hlink"] if demo else ["hlink", "census_py27"])


@pytest.mark.parametrize("gained", [True, False])
def test_a_built_demo_says_when_the_machine_has_gained_a_python_it_left_an_environment_out_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gained: bool) -> None:
    root = tmp_path / "root"
    (root / COMPLETE).parent.mkdir(parents=True)
    (root / COMPLETE).write_text(f"catalog {catalog_digest()}\n", encoding="utf-8")
    (root / ".condaqa" / DEMO_LEFT_OUT).write_text(json.dumps({"census_py27": "no python 2.7 here"}))
    (tmp_path / "site.toml").write_text('[site]\nroot = "root"\ndemo = true\n', encoding="utf-8")
    python = pythons.Interpreter(Path("/usr/bin/python2.7"), "2.7.18")
    monkeypatch.setattr(pythons, "find", lambda short: python if gained and short == "2.7" else None)
    said: list[str] = []
    assert ensure_demo(load_site(tmp_path / "site.toml"), progress=said.append) is False  # kept as it is
    assert said == ([f"demo: census_py27 was left out of this demo for want of a python 2.7, which this machine now "
                     f"has; remove the demo (rm -rf {root}) and run again to include it"] if gained else [])


def test_a_demo_left_out_of_a_partial_build_is_not_said_to_be_gained(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / COMPLETE).parent.mkdir(parents=True)
    (root / COMPLETE).write_text(f"catalog {catalog_digest()}\n{holding(['hlink'])}", encoding="utf-8")
    (root / ".condaqa" / DEMO_LEFT_OUT).write_text(json.dumps({"census_py27": NOT_ASKED}))
    (tmp_path / "site.toml").write_text('[site]\nroot = "root"\ndemo = true\n', encoding="utf-8")
    python = pythons.Interpreter(Path("/usr/bin/python2.7"), "2.7.18")
    monkeypatch.setattr(pythons, "find", lambda short: python)
    said: list[str] = []
    assert ensure_demo(load_site(tmp_path / "site.toml"), progress=said.append) is False
    assert said == []  # it was not built for want of that python: it was never asked for


@pytest.mark.parametrize(("built", "asked", "refused"), [
    ("hlink nhis_reformat", ("nhis_reformat", "hlink"), False),
    ("hlink nhis_reformat", None, False),  # the demo as it is
    ("hlink nhis_reformat", ("hlink",), True),
    ("", ("hlink",), True),  # a whole demo is not the partial one asked for
    ("", None, False),
])
def test_a_partial_demo_is_kept_only_for_the_environments_it_holds(
        tmp_path: Path, built: str, asked: tuple[str, ...] | None, refused: bool) -> None:
    root = tmp_path / "root"
    (root / COMPLETE).parent.mkdir(parents=True)
    holds = holding(built.split()) if built else ""
    (root / COMPLETE).write_text(f"built in 1.0s\ncatalog {catalog_digest()}\n{holds}", encoding="utf-8")
    (tmp_path / "site.toml").write_text('[site]\nroot = "root"\ndemo = true\n', encoding="utf-8")
    site = load_site(tmp_path / "site.toml")
    if refused:
        with pytest.raises(SiteError, match=f"{root} holds a demo site of other environments; remove it"):
            ensure_demo(site, progress=print, only=asked)
    else:
        assert ensure_demo(site, progress=print, only=asked) is False


def test_a_partial_demo_holds_only_its_environments_and_leaves_the_others_out(pip_site: Site) -> None:
    assert [e.name for e in site_manifest(pip_site)] == ["nhis_reformat", "survey_weights"]
    left_out = pip_site.left_out()
    assert left_out["hlink"] == NOT_ASKED and "census_py27" in left_out
    assert sorted(p.name for p in pip_site.current_installation().path.joinpath("envs").iterdir()) == [
        "nhis_reformat", "survey_weights"]
    assert not list((pip_site.root / "main").glob("*/ipykernel-*"))  # no kernel in it: no kernel's packages
    assert not list(pip_site.kernels_dir.glob("*/kernel.json"))


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("[environments]\na = REPLICATE\nb = maybe\n", 3, "b = 'maybe': expected REPLICATE or export"),
        ("[environments]\na = REPLICATE\na = export\n", 3, "environment 'a' is listed twice"),
        ("[environments]\nx/y = export\n", 2, "bad environment name 'x/y': contains a path separator"),
        ("[environments]\n..evil = export\n", 2, "bad environment name '..evil': contains '..'"),
        ("[environments]\nbase = export\n", 2, "bad environment name 'base': 'base' is reserved for the base"),
        ("[environments]\nmy env = export\n", 2, "bad environment name 'my env': contains whitespace"),
        ("[environments]\nweird#name = export\n", 2, "bad environment name 'weird#name': may only hold letters"),
        ("a = REPLICATE\n", 1, "expected an [environments] section first"),
        ("[environments]\na = export\n[extra]\n", 3, "unknown section [extra]"),
        ("[other]\n", 1, "unknown section [other]"),
    ],
)
def test_bad_ini_names_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_manifest(write(tmp_path, body))
    assert str(caught.value).startswith(f"{tmp_path / 'environments.ini'}:{line}: {message}"), str(caught.value)


@pytest.mark.parametrize(
    ("toml", "line", "message"),
    [
        ("[ghost]\nowner = 'x'\n", 1, "[ghost] is not an environment listed in the manifest"),
        ("[a]\ncolour = 'red'\n", 2, "[a] unknown key 'colour'"),
        ("[a]\nimports = 'x'\n", 2, "[a] imports has the wrong type"),
        ("[a]\ntimeout = true\n", 2, "[a] timeout has the wrong type"),
        ("[a]\ntimeout = -1\n", 2, "[a] timeout must be a positive number"),
        ("[a]\ntimeout = nan\n", 2, "[a] timeout must be a positive number of seconds up to 604800, got nan"),
        ("[a]\nimports = ['os; open(\"x\", \"w\")']\n", 2, "[a] imports: 'os; open"),
        ("[a]\nstrategy = 'latest'\n", 2, "[a] strategy must be one of"),
        ("[a]\nowner = \n", None, "Invalid value (at line 2, column 9)"),  # tomllib's own words name the line
    ],
)
def test_bad_toml_names_file_and_line(tmp_path: Path, toml: str, line: int | None, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_manifest(write(tmp_path, "[environments]\na = REPLICATE\n", toml))
    where = f"{tmp_path / 'environments.toml'}:{line}: " if line else f"{tmp_path / 'environments.toml'}: "
    assert str(caught.value).startswith(where + message), str(caught.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="manifest not found"):
        load_manifest(tmp_path / "nope.ini")


@pytest.mark.parametrize("name", ["nhis_reformat", "py3.11-env", "A+B", "x"])
def test_names_conda_accepts(name: str) -> None:
    assert name_problem(name) is None


def test_starter_ini_round_trips(tmp_path: Path) -> None:
    text = starter_ini([("a", "1.0 MiB, u:g"), ("b", "2.0 MiB, u:g")])
    envs = load_manifest(write(tmp_path, text))
    assert [(e.name, e.disposition) for e in envs] == [("a", "export"), ("b", "export")]
