"""Spec sanitation: each rule a pure function over (plan, context) -> (plan, findings).

The rules that read channels run against a small channel written here (repodata.json only);
the ones that read current's prefix get PrefixContents as prefix.read_prefix returns them.
The demo site shows history, overrides and the preflight through the build.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from condaqa import findings as findings_file
from condaqa import sanitize, sources
from condaqa.build.replicate import replicate
from condaqa.channels import RepodataIndex
from condaqa.cli import main
from condaqa.errors import BuildError, ConfigError, SpecError
from condaqa.manifest import load_manifest
from condaqa.plan import BuildPlan, PostStep
from condaqa.prefix import CondaPackage, PipDistribution, PrefixContents
from condaqa.findings import ERROR, INFO, SEVERITIES, WARNING
from condaqa.sanitize import Context
from condaqa.site import load_site
from condaqa.spec import EnvSpec, load_spec, parse_spec

PACKAGES = {  # name -> [(subdir, version)]
    "numpy": [("linux-64", "1.16.4"), ("linux-64", "1.18.5"), ("linux-64", "1.21.2")],
    "ipumsdata": [("noarch", "0.4.1"), ("noarch", "0.5.0"), ("noarch", "0.6.0")],
    "pyyaml": [("linux-64", "6.0")],
    "typing_extensions": [("noarch", "4.4.0")],
    "fixedwidth": [("noarch", "0.3.0")],
    "varlabels": [("noarch", "0.2.0")],
    "python": [("linux-64", "3.11.7")],
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> RepodataIndex:
    """A site with one local channel `chan` holding PACKAGES, for linux-64."""
    root = tmp_path_factory.mktemp("channel-site")
    for subdir in ("noarch", "linux-64"):
        records = {
            f"{name}-{version}-0.tar.bz2": {"name": name, "version": version, "build": "0", "build_number": 0,
                                             "depends": [], "subdir": subdir}
            for name, builds in PACKAGES.items() for sub, version in builds if sub == subdir
        }
        (root / "chan" / subdir).mkdir(parents=True)
        (root / "chan" / subdir / "repodata.json").write_text(json.dumps({"packages": records}))
    (root / "site.toml").write_text('[site]\nroot = "."\nchannels = ["chan"]\nplatform = "linux-64"\n')
    return RepodataIndex(load_site(root / "site.toml"))


def plan(conda=(), pip=(), post=()) -> BuildPlan:
    return BuildPlan("env1", tuple(conda), tuple(pip), post=tuple(post))


def installed(conda=(), pip=()) -> PrefixContents:
    """Current's prefix as read_prefix gives it: conda records and pip distributions (with direct_url)."""
    packages = tuple(CondaPackage(n, v, "0", "https://x/chan", "noarch") for n, v in conda)
    dists = tuple(PipDistribution(n, v, Path(f"/sp/{n}-{v}.dist-info"), d) for n, v, d in pip)
    return PrefixContents(Path("/envs/env1"), packages, dists, Path("/sp"))


def one(findings, rule=None):
    assert len(findings) == 1, findings
    assert rule is None or findings[0].rule == rule
    return findings[0]


# --- entry syntax -------------------------------------------------------------------------------


def test_build_strings_are_dropped_in_one_finding_unless_kept():
    conda = ("numpy=1.18.5=py38ha1c710e_0", "pytorch=1.5.1=py3.8_cuda10.1.243_cudnn7.6.3_0", "python=3.8")
    out, findings = sanitize.entry_syntax(plan(conda), Context("env1"))
    assert out.conda == ("numpy=1.18.5", "pytorch=1.5.1", "python=3.8")
    found = one(findings, "entry-syntax")
    assert found.severity == INFO and found.package == "numpy, pytorch" and "2 entries" in found.action
    kept, none = sanitize.entry_syntax(plan(conda), Context("env1", keep_builds=True))
    assert kept.conda == conda and none == []


def test_bad_and_repeated_conda_entries_are_dropped_and_named():
    conda = ["numpy=1.18.5", "-e foo", "numpy=1.21.2"]
    out, findings = sanitize.entry_syntax(plan(conda), Context("env1"))
    assert out.conda[0] == "numpy=1.18.5" and "numpy=1.21.2" not in out.conda and "-e foo" not in out.conda
    by_package = {f.package: f for f in findings}
    assert by_package["-e foo"].severity == ERROR and "manifests/overrides/env1.yml" in by_package["-e foo"].hint
    assert by_package["numpy"].severity == WARNING and "listed twice" in by_package["numpy"].reason


# --- pip syntax ----------------------------------------------------------------------------------


def test_pip_lines_keep_options_flag_loose_pins_and_drop_what_pip_refuses():
    pip = ["--extra-index-url https://download.pytorch.org/whl/rocm5.2", "torch==1.13.0+rocm5.2", "mlops-tempo",
           "Pillow==6.0.*", "not a requirement !!", "PyYAML==6.0", "pyyaml==6.0", "hmr2==0.0.0"]
    out, findings = sanitize.pip_syntax(plan(pip=pip), Context("env1"))
    assert out.pip == tuple(p for p in pip if p not in ("not a requirement !!", "pyyaml==6.0"))
    by_package = {f.package: f for f in findings}
    assert by_package["not a requirement !!"].severity == ERROR
    assert "newest" in by_package["mlops-tempo"].reason and "newest" in by_package["Pillow"].reason
    assert "listed twice" in by_package["pyyaml"].reason
    assert "source checkout" in by_package["hmr2"].reason
    assert "torch" not in by_package  # its index is in the section


def test_a_local_version_label_without_its_index_is_flagged():
    _, findings = sanitize.pip_syntax(plan(pip=["detectron2==0.6+cu111"]), Context("env1"))
    assert "local version label" in one(findings, "pip-syntax").reason


# --- rule 3: listed twice ------------------------------------------------------------------------


def test_a_distribution_both_conda_and_pip_is_dropped_from_pip_names_normalised():
    ctx = Context("env1", installed=installed([("pyyaml", "6.0"), ("typing_extensions", "4.4.0")]))
    out, findings = sanitize.listed_twice(plan(pip=["PyYAML==6.0", "Typing.Extensions==4.5.0", "requests==2.0"]), ctx)
    assert out.pip == ("requests==2.0",)
    by_package = {f.package: f for f in findings}
    assert by_package["pyyaml"].severity == INFO and by_package["pyyaml"].action == "dropped from pip"
    drifted = by_package["typing_extensions"]
    assert drifted.severity == WARNING and "pip had 4.5.0" in drifted.reason and "4.4.0" in drifted.reason
    assert findings_file.explained_packages(findings) == {"pyyaml", "typing-extensions"}


def test_listed_twice_reads_the_spec_when_no_prefix_is_known():
    out, findings = sanitize.listed_twice(plan(["pyyaml=6.0"], ["PyYAML==6.0"]), Context("env1"))
    assert out.pip == () and one(findings).package == "pyyaml"


# --- rule 4: installed from git, an archive or a directory ---------------------------------------


def test_a_git_install_becomes_a_post_step_at_its_commit():
    commit = "63c0bdbc03d69b6f415681dc5b86ca400891bf68"
    origin = {"url": "https://github.com/ipums/harmonize", "vcs_info": {"vcs": "git", "commit_id": commit}}
    ctx = Context("env1", installed=installed(pip=[("harmonize", "0.2.0", origin), ("six", "1.0", None)]))
    out, findings = sanitize.direct_url(plan(pip=["harmonize==0.2.0", "six==1.0"]), ctx)
    assert out.pip == ("six==1.0",)
    assert out.post == (PostStep("pip", f"git+https://github.com/ipums/harmonize@{commit}", "harmonize from git"),)
    found = one(findings, "direct-url")
    assert found.severity == INFO and "git https://github.com/ipums/harmonize at commit 63c0bdbc03d6" in found.reason


def test_archives_and_existing_directories_become_post_steps(tmp_path):
    ctx = Context("env1", installed=installed(pip=[
        ("tool", "1.0", {"url": "https://example.org/tool-1.0.tar.gz", "archive_info": {}}),
        ("mine", "0.1", {"url": tmp_path.as_uri(), "dir_info": {"editable": True}}),
    ]))
    out, findings = sanitize.direct_url(plan(pip=["tool==1.0", "mine==0.1"]), ctx)
    assert out.pip == () and [s.requirement for s in out.post] == ["tool @ https://example.org/tool-1.0.tar.gz",
                                                                    f"-e {tmp_path}"]
    assert [f.severity for f in findings] == [INFO, WARNING]  # an editable copy is taken as it is now


def test_a_vanished_source_directory_is_an_error_asking_for_manual_action(tmp_path):
    gone = tmp_path / "gone"
    ctx = Context("env1", installed=installed(pip=[("mine", "0.1", {"url": gone.as_uri(), "dir_info": {}})]))
    out, findings = sanitize.direct_url(plan(pip=["mine==0.1"]), ctx)
    found = one(findings)
    assert out.pip == () and out.post == ()
    assert found.severity == ERROR and str(gone) in found.reason and found.action == "dropped: needs manual action"


def test_urls_written_in_the_file_become_post_steps_and_branches_are_flagged(tmp_path):
    pip = ["git+https://github.com/Schiphol-Hub/SSDTools.git@master#egg=SSDTools",
           "-e git+https://github.com/a/b.git@0123456789abcdef0123456789abcdef01234567#egg=b",
           f"foo ({tmp_path})==0.1"]  # conda 4.3-4.5 wrote editables like this
    out, findings = sanitize.direct_url(plan(pip=pip), Context("env1"))
    assert [s.requirement for s in out.post] == [pip[0], pip[1], f"-e {tmp_path}"] and out.pip == ()
    assert [f.severity for f in findings] == [WARNING, WARNING, WARNING]
    assert "branch or tag" in findings[0].reason and "editable" in findings[1].reason


def test_an_unreadable_direct_url_keeps_the_pin():
    ctx = Context("env1", installed=installed(pip=[("x", "1.0", {"url": "", "invalid": True})]))
    out, findings = sanitize.direct_url(plan(pip=["x==1.0"]), ctx)
    assert out.pip == ("x==1.0",) and one(findings).severity == WARNING


# --- rule 2: noarch in pip -----------------------------------------------------------------------


def test_a_pip_entry_published_as_noarch_conda_at_that_version_moves_to_conda(index):
    pip = ["fixedwidth==0.3.0", "typing-extensions==4.4.0", "ipumsdata==0.4.0", "pyyaml==6.0", "requests==2.0"]
    out, findings = sanitize.noarch_in_pip(plan(["python=3.11"], pip), Context("env1", index=index))
    assert out.conda == ("python=3.11", "fixedwidth=0.3.0", "typing_extensions=4.4.0")
    assert out.pip == ("ipumsdata==0.4.0", "pyyaml==6.0", "requests==2.0")  # other version; not noarch; absent
    assert [f.package for f in findings] == ["fixedwidth", "typing_extensions"]
    assert sanitize.noarch_in_pip(plan(pip=pip), Context("env1")) == (plan(pip=pip), [])  # no channels known


# --- rule 5: legacy noarch -----------------------------------------------------------------------


def test_legacy_noarch_packages_are_stripped_and_installed_one_by_one(tmp_path):
    listing = tmp_path / "legacy-noarch.txt"
    listing.write_text("# internal packages built with noarch_python\nvarlabels   # since 2016\n\nhoneybee\n")
    legacy = sanitize.load_legacy(listing)
    assert legacy == {"varlabels", "honeybee"}
    out, findings = sanitize.legacy_noarch(plan(["python", "varlabels=0.2.0", "tabular"]), Context("env1", legacy))
    assert out.conda == ("python", "tabular") and out.post == (PostStep("conda", "varlabels=0.2.0", "legacy noarch"),)
    assert one(findings, "legacy-noarch").package == "varlabels"
    assert sanitize.load_legacy(tmp_path / "absent.txt") == frozenset()


def test_a_bad_legacy_line_names_file_and_line(tmp_path):
    listing = tmp_path / "legacy-noarch.txt"
    listing.write_text("varlabels\nnot a name\n")
    with pytest.raises(ConfigError, match=r"legacy-noarch.txt:2: 'not a name'"):
        sanitize.load_legacy(listing)


# --- rule 1: preflight ---------------------------------------------------------------------------


def test_a_pin_missing_from_every_channel_is_an_error_listing_the_nearest_versions(index):
    conda = ["numpy=1.18.5", "python=3.11", "ipumsdata=0.4.0", "nosuchthing=1.0", "__glibc"]
    post = [PostStep("conda", "varlabels=0.3.0")]
    started = time.monotonic()
    out, findings = sanitize.missing_version(plan(conda, post=post), Context("env1", index=index, platform="linux-64"))
    assert time.monotonic() - started < 0.5
    assert out == plan(conda, post=post)
    by_package = {f.package: f for f in findings}
    assert set(by_package) == {"ipumsdata", "nosuchthing", "varlabels"}
    missing = by_package["ipumsdata"]
    assert missing.severity == ERROR and "nearest available: 0.4.1, 0.5.0" in missing.reason
    assert "chan (linux-64, noarch)" in missing.reason and "pin one of 0.4.1, 0.5.0" in missing.hint
    assert "no package nosuchthing" in by_package["nosuchthing"].reason


def test_nearest_versions_are_the_neighbours_in_version_order():
    versions = ["0.10.0", "0.9.0", "0.4.1", "1.0", "0.5.0"]
    assert sanitize.nearest_versions("0.4.0", versions) == ["0.4.1", "0.5.0"]
    assert sanitize.nearest_versions("0.9.5", versions) == ["0.5.0", "0.9.0", "0.10.0", "1.0"]
    assert sanitize.nearest_versions("==2.0", versions, around=1) == ["1.0"]


# --- all rules, files ----------------------------------------------------------------------------


def test_rules_are_pure_and_every_finding_is_complete(index, tmp_path):
    ctx = Context("env1", frozenset({"varlabels"}), index, installed([("pyyaml", "6.0")]), platform="linux-64")
    start = plan(["numpy=1.18.5=py38_0", "varlabels=0.2.0", "ipumsdata=0.4.0"],
                 ["PyYAML==6.0", "fixedwidth==0.3.0", f"-e {tmp_path}"])
    first = sanitize.apply_rules(start, ctx)
    assert sanitize.apply_rules(start, ctx) == first and start.conda[0].endswith("py38_0")
    built, findings = first
    assert built.conda == ("numpy=1.18.5", "ipumsdata=0.4.0", "fixedwidth=0.3.0")
    assert [s.kind for s in built.post] == ["pip", "conda"] and built.pip == ()
    rules = [f.rule for f in findings]
    assert rules == ["entry-syntax", "listed-twice", "direct-url", "noarch-in-pip", "legacy-noarch", "missing-version"]
    assert all(f.environment == "env1" and f.action and f.reason and f.severity in SEVERITIES
               for f in findings)


def test_sanitize_spec_names_the_keys_it_drops():
    spec = parse_spec("name: wood\nchannels: [defaults]\ndependencies: [python=3.9=h1_0]\n"
                      "prefix: C:\\Users\\USER\\.conda\\envs\\wood\nauthor: me\n", "wood.yml")
    result = sanitize.sanitize_spec(spec, Context("wood"))
    by_package = {f.package: f for f in result.findings}
    assert "exported on Windows" in by_package["prefix"].reason and by_package["author"].severity == WARNING
    assert result.spec == EnvSpec("wood", ["defaults"], ["python=3.9"])


def test_conda_list_output_is_refused_naming_the_file(tmp_path):
    listing = tmp_path / "myenv.yml"
    listing.write_text("# packages in environment at /x/envs/myenv:\n#\nbzip2    1.0.8    h1de35cc_0\n")
    with pytest.raises(SpecError, match=r"myenv.yml: this is `conda list` output"):
        sanitize.sanitize_file(listing)


# --- override, history and preflight on the demo site --------------------------------------------


def env_named(site, name):
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def test_from_history_gives_the_specs_users_asked_for(demo_template):
    spec = sources.export_from_history(demo_template, "super_important_jupyter_kernel")
    assert spec.dependencies == ["datefmt >=1.0", "pip", "python", "tabular"] and spec.pip == []
    assert sources.export_from_history(demo_template, "nhis_reformat").pip == ["codebook==1.2.0"]


def test_an_override_replaces_the_export_and_says_what_it_fixed(demo_template):
    built, findings = sources.plan_environment(demo_template, env_named(demo_template, "missing_pin"))
    assert built.source == "override" and "ipumsdata=0.4.1" in built.conda
    by_rule = {(f.rule, f.package): f for f in findings}
    assert by_rule[("override", "ipumsdata")].action == "ipumsdata=0.4.1 instead of ipumsdata=0.4.0"
    fixed = by_rule[("missing-version", "ipumsdata")]
    assert fixed.severity == INFO and fixed.action == "fixed by the override" and "0.4.1, 0.5.0" in fixed.reason


def test_without_its_override_a_missing_pin_stops_at_preflight_without_a_solve(demo_site):
    sources.override_path(demo_site, "missing_pin").unlink()
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        replicate(demo_site, env_named(demo_site, "missing_pin"))
    assert time.monotonic() - started < 1.0
    assert caught.value.stage == "preflight" and "nearest available: 0.4.1, 0.5.0" in str(caught.value)
    assert "specs against" not in Path(caught.value.log).read_text()  # the engine never started a solve
    saved = findings_file.load_findings(demo_site, "missing_pin")
    assert [f.rule for f in saved.findings if f.severity == ERROR] == ["missing-version"] and not saved.override


def test_a_history_build_lists_its_drift(demo_site):
    toml = demo_site.manifest.with_suffix(".toml")
    toml.write_text(toml.read_text().replace('[hlink]\n', '[hlink]\nstrategy = "history"\n'))
    env = env_named(demo_site, "hlink")
    built = replicate(demo_site, env)
    assert built.plan.source == "history" and built.plan.conda == ("linkage", "pip", "python")
    assert any(f.rule == "history" and f.package == "*" for f in built.findings)
    drift = [f for f in built.findings if f.rule == "history" and f.package != "*"]
    assert drift == []  # the newest versions are the ones current has: nothing moved
    doctored = demo_site.root / "v4.3" / "envs" / "hlink" / "conda-meta"
    record = next(doctored.glob("tabular-2.0.0-*.json"))
    record.rename(record.with_name("tabular-1.1.0-pyh_0.json"))
    record = record.with_name("tabular-1.1.0-pyh_0.json")
    record.write_text(record.read_text().replace('"version": "2.0.0"', '"version": "1.1.0"'))
    again = replicate(demo_site, env)
    [moved] = [f for f in again.findings if f.rule == "history" and f.package != "*"]
    assert moved.package == "tabular" and moved.action == "1.1.0 -> 2.0.0"
    assert "tabular" in findings_file.explained_packages(findings_file.load_findings(demo_site, "hlink").findings)


def test_a_foreign_file_with_the_site_channels_gets_the_preflight(demo_template, tmp_path):
    exported = tmp_path / "missing_pin.yml"
    exported.write_text("name: missing_pin\nchannels: [mpc]\ndependencies:\n  - ipumsdata=0.4.0=pyh_0\n")
    index = RepodataIndex(demo_template)
    legacy = sanitize.load_legacy(sources.legacy_path(demo_template))
    result = sanitize.sanitize_file(exported, index=index, legacy=legacy)
    assert result.spec.dependencies == ["ipumsdata=0.4.0"]
    [missing] = [f for f in result.findings if f.rule == "missing-version"]
    assert missing.severity == ERROR and str(exported) in missing.hint  # fixed in the file itself


def test_the_sanitize_command_runs_the_preflight_only_with_a_site(demo_template, tmp_path, capsys):
    exported = tmp_path / "old.yml"
    exported.write_text("name: old\nchannels: [mpc]\ndependencies: [python, ipumsdata=0.4.0=pyh_0]\n")
    out = tmp_path / "out"
    assert main(["sanitize", str(exported), "--out", str(out)]) == 0
    assert "1 finding;" in capsys.readouterr().out
    assert main(["sanitize", str(exported), "--site", str(demo_template.file), "--out", str(out)]) == 1
    assert "2 findings, 1 error;" in capsys.readouterr().out
    assert main(["--site", str(demo_template.file), "sanitize", str(exported), "--out", str(out)]) == 1
    assert "nearest available: 0.4.1, 0.5.0" in (out / "old.findings.json").read_text()
    assert load_spec(out / "old.yml").dependencies == ["python", "ipumsdata=0.4.0"]
