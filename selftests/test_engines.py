"""Engine registry and the conda engine, driven through a stand-in for the installation's conda."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

from condaqa.build.replicate import replicate
from condaqa.engines import get_engine
from condaqa.errors import BuildError, ConfigError
from condaqa.manifest import load_manifest
from condaqa.prefix import read_prefix

# A stand-in for the installation's conda. It accepts the two command lines condaqa gives conda,
#   create  --yes --quiet --prefix P --override-channels -c URL ... SPECS
#   install --yes --quiet --prefix P --override-channels -c URL ... --freeze-installed SPEC
# checks them, and does the work with the rattler engine's own code, or fails like conda's
# PackagesNotFoundError for a version 9.9.9.
STAND_IN = f"""#!{sys.executable}
import os
import sys
from dataclasses import replace
from pathlib import Path
from condaqa.engines.rattler import _add, _create
from condaqa.plan import BuildPlan
from condaqa.site import load_site, Installation
args = sys.argv[1:]
assert args[0] in ("create", "install") and args[1:3] == ["--yes", "--quiet"], args
assert args[3] == "--prefix" and args[5] == "--override-channels", args
prefix = Path(args[4])
rest = [a for a in args[6:] if a != "--freeze-installed"]
channels = tuple(a for i, a in enumerate(rest) if i > 0 and rest[i - 1] == "-c")
specs = [a for a in rest if a != "-c" and a not in channels]
if any("9.9.9" in s for s in specs):
    print("PackagesNotFoundError: The following packages are not available from current channels:")
    print("  - " + [s for s in specs if "9.9.9" in s][0])
    sys.exit(1)
site = replace(load_site(None), channels=channels)
inst = Installation(prefix.parent.parent.name, prefix.parent.parent)
if args[0] == "create":
    lines = _create(site, inst, BuildPlan(prefix.name, tuple(specs)), prefix)
else:
    assert "--freeze-installed" in args and len(specs) == 1, args
    lines = _add(site, inst, prefix.name, prefix, specs[0])
print("\\n".join(lines), flush=True)
os._exit(0)  # as engines/isolated.py: py-rattler 0.28 can abort while the interpreter finalizes
"""


def test_unknown_engine_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown engine 'pixi'; known engines: rattler, conda"):
        get_engine("pixi")


def test_conda_engine_needs_a_conda(demo_site):
    site = replace(demo_site, engine="conda")
    env = next(e for e in load_manifest(site.manifest) if e.name == "hlink")
    with pytest.raises(BuildError, match="has neither conda nor mamba"):
        replicate(site, env)


@pytest.fixture
def conda_site(demo_site, monkeypatch):
    """The demo site with engine = "conda" and the stand-in as qa's bin/conda."""
    site = replace(demo_site, engine="conda")
    conda = site.root / "v4.8" / "bin" / "conda"
    conda.write_text(STAND_IN)
    conda.chmod(0o755)
    monkeypatch.setenv("CONDAQA_SITE", str(site.file))
    return site


def test_conda_engine_builds_through_the_installations_conda(conda_site):
    site = conda_site
    env = next(e for e in load_manifest(site.manifest) if e.name == "nhis_reformat")
    built = replicate(site, env)
    assert {d.name for d in read_prefix(built.prefix).pip} == {"codebook"}
    assert f"--override-channels -c {site.channel_urls()[0]}" in built.log.read_text()

    record = next((site.root / "v4.3" / "envs" / "hlink" / "conda-meta").glob("linkage-*.json"))
    record.write_text(record.read_text().replace('"version": "2.2.0"', '"version": "9.9.9"'))
    hlink = next(e for e in load_manifest(site.manifest) if e.name == "hlink")
    with pytest.raises(BuildError) as caught:
        replicate(site, hlink)
    assert caught.value.stage in ("solve", "preflight") and "9.9.9" in str(caught.value)


def test_conda_engine_adds_legacy_packages_one_by_one(conda_site):
    site = conda_site
    env = next(e for e in load_manifest(site.manifest) if e.name == "legacy_noarch")
    built = replicate(site, env)
    log = built.log.read_text()
    assert "install --yes --quiet --prefix" in log and "--freeze-installed varlabels=0.2.0" in log
    assert "varlabels" in {p.name for p in read_prefix(built.prefix).conda}
