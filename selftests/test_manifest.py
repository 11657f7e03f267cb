"""environments.ini / environments.toml: the seed format, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from condaqa.errors import ConfigError
from condaqa.manifest import load_manifest, name_problem, starter_ini


def write(tmp_path: Path, ini: str, toml: str | None = None) -> Path:
    path = tmp_path / "environments.ini"
    path.write_text(ini, encoding="utf-8")
    if toml is not None:
        path.with_suffix(".toml").write_text(toml, encoding="utf-8")
    return path


def test_seed_format_with_comments_and_case(tmp_path):
    ini = write(tmp_path, "# header\n[environments]\nnhis_reformat = REPLICATE\n# old one\n"
                     "Old.Env = Export  # gone\nhlink=replicate\n")
    envs = load_manifest(ini)
    assert [(e.name, e.disposition, e.line) for e in envs] == [
        ("nhis_reformat", "replicate", 3), ("Old.Env", "export", 5), ("hlink", "replicate", 6),
    ]


def test_toml_adds_per_environment_facts(tmp_path):
    ini = write(tmp_path, "[environments]\na = REPLICATE\nb = export\n",
                '[a]\nowner = "ann"\nimports = ["x", "y"]\nkernel = "k"\npip_args = ["--pre"]\ntimeout = 30\n')
    a, b = load_manifest(ini)
    assert (a.owner, a.imports, a.kernel, a.pip_args, a.timeout) == ("ann", ("x", "y"), "k", ("--pre",), 30.0)
    assert b.imports is None and b.owner == ""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[environments]\na = REPLICATE\nb = maybe\n", "environments.ini:3: b = 'maybe': expected REPLICATE or export"),
        ("[environments]\na = REPLICATE\na = export\n", "environments.ini:3: environment 'a' is listed twice"),
        ("[environments]\nx/y = export\n", "environments.ini:2: bad environment name 'x/y': contains a path separator"),
        ("[environments]\n..evil = export\n", "environments.ini:2: bad environment name '..evil': contains '..'"),
        ("[environments]\nbase = export\n", "reserved for the base environment"),
        ("[environments]\nmy env = export\n", "contains whitespace"),
        ("[environments]\nweird#name = export\n", "environments.ini:2: bad environment name"),
        ("a = REPLICATE\n", "environments.ini:1: expected an [environments] section first"),
        ("[environments]\na = export\n[extra]\n", "unknown section [extra]"),
        ("[other]\n", "unknown section [other]"),
    ],
)
def test_bad_ini_names_file_and_line(tmp_path, body, message):
    with pytest.raises(ConfigError, match=None) as caught:
        load_manifest(write(tmp_path, body))
    assert message in str(caught.value)
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[ghost]\nowner = 'x'\n", "environments.toml:1: [ghost] is not an environment listed in the manifest"),
        ("[a]\ncolour = 'red'\n", "environments.toml:2: [a] unknown key 'colour'"),
        ("[a]\nimports = 'x'\n", "imports has the wrong type"),
        ("[a]\ntimeout = true\n", "timeout has the wrong type"),
        ("[a]\ntimeout = -1\n", "environments.toml:2: [a] timeout must be a positive number"),
        ("[a]\ntimeout = nan\n", "timeout must be a positive number of seconds up to 604800, got nan"),
        ("[a]\nimports = ['os; open(\"x\", \"w\")']\n", "environments.toml:2: [a] imports: 'os; open"),
        ("[a]\nstrategy = 'latest'\n", "strategy must be one of"),
        ("[a]\nowner = \n", "environments.toml: Invalid value (at line 2, column 9)"),
    ],
)
def test_bad_toml_names_file(tmp_path, toml, message):
    with pytest.raises(ConfigError) as caught:
        load_manifest(write(tmp_path, "[environments]\na = REPLICATE\n", toml))
    assert message in str(caught.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(ConfigError, match="manifest not found"):
        load_manifest(tmp_path / "nope.ini")


@pytest.mark.parametrize("name", ["nhis_reformat", "py3.11-env", "A+B", "x"])
def test_names_conda_accepts(name):
    assert name_problem(name) is None


def test_starter_ini_round_trips(tmp_path):
    text = starter_ini([("a", "1.0 MiB, u:g"), ("b", "2.0 MiB, u:g")])
    envs = load_manifest(write(tmp_path, text))
    assert [(e.name, e.disposition) for e in envs] == [("a", "export"), ("b", "export")]
