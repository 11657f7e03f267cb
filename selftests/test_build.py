"""Replication with the rattler engine: real solve and link, conda history, idempotence, guards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from condaqa.checks.imports import import_modules
from condaqa.errors import BuildError
from condaqa.manifest import Environment, load_manifest
from condaqa.prefix import read_history, read_prefix
from condaqa.replication.replicate import refuse_unsafe_target, replicate
from condaqa.replication.stamp import env_fingerprint, read_stamp
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Site


def env_named(site: Site, name: str) -> Environment:
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def test_replicate_writes_conda_history_and_is_idempotent(demo_site: Site) -> None:
    env = env_named(demo_site, "nhis_reformat")
    first = replicate(demo_site, sandbox_for(demo_site), env)
    assert first.rebuilt and first.prefix == demo_site.root / "v4.8" / "envs" / "nhis_reformat"
    contents = read_prefix(first.prefix)
    assert {(p.name, p.version) for p in contents.conda} >= {("tabular", "1.1.0"), ("fixedwidth", "0.4.0")}
    assert [(d.name, d.version) for d in contents.pip] == [("codebook", "1.2.0")]
    history = (first.prefix / "conda-meta" / "history").read_text()
    assert history.startswith("==> ") and "# cmd: condaqa replicate --env nhis_reformat" in history
    assert f"+{(demo_site.root / 'main').as_uri()}/noarch::tabular-1.1.0-pyh_0" in history  # conda's dist format
    [revision] = read_history(first.prefix)
    assert "tabular=1.1.0" in revision.specs["update"]
    again = replicate(demo_site, sandbox_for(demo_site), env)
    stamp = read_stamp(again.prefix)
    assert not again.rebuilt and stamp is not None and stamp.digest == again.plan.digest()
    assert replicate(demo_site, sandbox_for(demo_site), env, rebuild=True).rebuilt
    assert "up to date" in first.log.read_text()


def test_unsatisfiable_pins_fail_in_the_solver_with_its_explanation(demo_site: Site) -> None:
    """Both versions exist (so the preflight lets them through); linkage 2.2.0 needs ipumsdata >=0.5."""
    override = demo_site.manifest.parent / "overrides" / "hlink.yml"
    override.write_text("name: hlink\ndependencies: [python, pip, linkage=2.2.0, ipumsdata=0.4.1]\n")
    with pytest.raises(BuildError) as caught:
        replicate(demo_site, sandbox_for(demo_site), env_named(demo_site, "hlink"))
    assert caught.value.stage == "solve"
    assert "linkage" in str(caught.value) and "ipumsdata >=0.5" in str(caught.value)
    assert caught.value.log and "FAILED at solve" in Path(caught.value.log).read_text()


def test_never_builds_under_current(demo_site: Site) -> None:
    with pytest.raises(BuildError, match="refusing to write there"):
        refuse_unsafe_target(demo_site, demo_site.root / "current" / "envs" / "x")
    with pytest.raises(BuildError, match="refusing to write there"):
        replicate(demo_site, sandbox_for(demo_site), env_named(demo_site, "hlink"), target="v4.3")


def test_an_environment_condaqa_did_not_build_is_not_replaced_without_rebuild(demo_site: Site) -> None:
    prefix = demo_site.root / "v4.8" / "envs" / "hlink"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "history").write_text("")
    (prefix / "notes.txt").write_text("someone's work")
    with pytest.raises(BuildError, match="was not built by condaqa") as caught:
        replicate(demo_site, sandbox_for(demo_site), env_named(demo_site, "hlink"))
    assert caught.value.stage == "guard" and str(prefix) in str(caught.value)
    assert (prefix / "notes.txt").read_text() == "someone's work"
    assert replicate(demo_site, sandbox_for(demo_site), env_named(demo_site, "hlink"), rebuild=True).rebuilt
    assert not (prefix / "notes.txt").exists()


def test_what_a_failed_build_left_is_replaced_by_the_next_build_without_rebuild(demo_site: Site) -> None:
    """A build that fails after the engine made the prefix leaves no stamp; it is condaqa's own all the
    same, so the next run replaces it instead of refusing it as someone's work."""
    overrides = demo_site.manifest.parent / "overrides"
    overrides.mkdir(exist_ok=True)
    override = overrides / "survey_weights.yml"
    override.write_text("name: survey_weights\nchannels: [main, mpc]\ndependencies:\n  - python\n  - pip\n"
                        "  - tabular=2.0.0\n  - pip:\n      - surveyweights==9.9\n")
    env = env_named(demo_site, "survey_weights")
    with pytest.raises(BuildError) as failed:
        replicate(demo_site, sandbox_for(demo_site), env)
    prefix = demo_site.root / "v4.8" / "envs" / "survey_weights"
    assert failed.value.stage == "pip" and (prefix / "conda-meta").is_dir() and read_stamp(prefix) is None
    override.unlink()
    built = replicate(demo_site, sandbox_for(demo_site), env)
    assert built.rebuilt and read_stamp(prefix) == built.stamp
    (prefix / "conda-meta" / "condaqa-build").unlink()  # a finished build leaves no mark: without its stamp,
    (prefix / "notes.txt").write_text("someone's work")  # the prefix is someone else's again
    with pytest.raises(BuildError, match="was not built by condaqa"):
        replicate(demo_site, sandbox_for(demo_site), env)
    assert (prefix / "notes.txt").exists()


def test_bytecode_is_compiled_at_link_time_and_listed_as_conda_does(demo_site: Site) -> None:
    built = replicate(demo_site, sandbox_for(demo_site), env_named(demo_site, "hlink"))
    record = json.loads(next((built.prefix / "conda-meta").glob("linkage-*.json")).read_text())
    pycs = [f for f in record["files"] if f.endswith(".pyc")]
    assert pycs and all((built.prefix / f).is_file() for f in pycs)
    assert {"_path": pycs[0], "path_type": "pyc_file"} in record["paths_data"]["paths"]
    assert record["requested_spec"] == "linkage=2.2.0"
    runs = import_modules(sandbox_for(demo_site), "hlink", built.prefix / "bin" / "python",
                          ["linkage", "ipumsdata", "ipykernel"])
    assert [r.name for r in runs if not r.passed] == []
    assert env_fingerprint(built.prefix, demo_site.state_dir) == built.stamp.fingerprint  # nothing written
