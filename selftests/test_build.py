"""Replication with the rattler engine: real solve and link, conda history, idempotence, guards."""

from __future__ import annotations

from pathlib import Path

import pytest

from condaqa.build import built_digest, refuse_current, replicate
from condaqa.errors import BuildError
from condaqa.manifest import load_manifest
from condaqa.prefix import read_history, read_prefix


def env_named(site, name):
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def test_replicate_writes_conda_history_and_is_idempotent(demo_site):
    env = env_named(demo_site, "nhis_reformat")
    first = replicate(demo_site, env)
    assert first.rebuilt and first.prefix == demo_site.root / "v4.8" / "envs" / "nhis_reformat"
    contents = read_prefix(first.prefix)
    assert {(p.name, p.version) for p in contents.conda} >= {("tabular", "1.1.0"), ("fixedwidth", "0.4.0")}
    assert [(d.name, d.version) for d in contents.pip] == [("codebook", "1.2.0")]
    history = (first.prefix / "conda-meta" / "history").read_text()
    assert history.startswith("==> ") and "# cmd: condaqa replicate --env nhis_reformat" in history
    assert "+main/noarch::tabular-1.1.0-pyh_0" in history
    [revision] = read_history(first.prefix)
    assert "tabular=1.1.0" in revision.specs["update"]
    again = replicate(demo_site, env)
    assert not again.rebuilt and built_digest(again.prefix) == again.plan.digest()
    assert replicate(demo_site, env, rebuild=True).rebuilt
    assert "up to date" in first.log.read_text()


def test_unsatisfiable_pin_fails_with_the_solver_message(demo_site):
    env = env_named(demo_site, "hlink")
    override = demo_site.root / "v4.3" / "envs" / "hlink" / "conda-meta"
    record = next(override.glob("linkage-2.2.0-*.json"))
    record.write_text(record.read_text().replace('"version": "2.2.0"', '"version": "9.9.9"'))
    with pytest.raises(BuildError) as caught:
        replicate(demo_site, env)
    assert caught.value.stage in ("solve", "preflight")
    assert "linkage" in str(caught.value) and "9.9.9" in str(caught.value)
    assert caught.value.log and "FAILED" in Path(caught.value.log).read_text()


def test_never_builds_under_current(demo_site):
    with pytest.raises(BuildError, match="refusing to write there"):
        refuse_current(demo_site, demo_site.root / "current" / "envs" / "x")
    with pytest.raises(BuildError, match="refusing to write there"):
        replicate(demo_site, env_named(demo_site, "hlink"), target="v4.3")
