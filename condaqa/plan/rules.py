"""The sanitation rules: small pure functions that turn a spec into a buildable plan.

A rule takes a BuildPlan and a Context (what is known of the site's channels, of the
environment as it is in current, and of what the site allows) and returns the changed plan
with one Finding per change, so the owner is told exactly what changed and why. Rules read
no files and know no site: planning.py and foreign.py gather the Context for them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rattler
from packaging.utils import canonicalize_name
from rattler.exceptions import InvalidVersionError, InvalidVersionSpecError

from condaqa.channels import RepodataIndex
from condaqa.inputs import control_character
from condaqa.plan.entries import (
    CONDA_NAME,
    VCS_SCHEMES,
    PipEntry,
    PipOption,
    local_path,
    parse_conda,
    parse_pip,
    without_build,
)
from condaqa.plan.findings import Finding
from condaqa.plan.model import BuildPlan, PostStep
from condaqa.prefix import PrefixContents
from condaqa.vocab import Rule as RuleName
from condaqa.vocab import Severity, StepKind

_COMMIT = re.compile(r"@[0-9a-f]{7,40}(?:[#&]|$)")
_SOURCE_VERSIONS = ("0.0.0", "0.0.0.dev0", "0.0.1.dev0")
_ARCHIVES = (".whl", ".tar.gz", ".tar.bz2", ".zip", ".tgz")
ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@dataclass(frozen=True)
class Context:
    """What the rules may consult; None (or empty) means 'not known here' and the rules needing it skip."""

    env: str
    legacy: frozenset[str] = frozenset()
    index: RepodataIndex | None = None  # the site's channels (preflight, noarch look-ups)
    installed: PrefixContents | None = None  # the environment as it is in current
    keep_builds: bool = False
    platform: str = ""
    fix_in: str = ""  # where the owner fixes the spec; default: the environment's override file
    present: frozenset[Path] = frozenset()  # local source paths that exist on this machine
    site_pip_args: tuple[str, ...] = ()  # what the site's pip_args give pip (allowed option lines)
    env_pip_args: tuple[str, ...] = ()  # what environments.toml adds for this environment (allowed lines too)
    local_sources: bool = False  # environments.toml allows pip installs from folders and archives here
    conda_version: str = ""  # the qa installation's conda, when it builds the environment

    def finding(self, rule: RuleName, package: str, action: str, reason: str, severity: Severity = INFO,
                hint: str = "") -> Finding:
        return Finding(rule, self.env, package, action, reason, severity, hint)

    def override_hint(self) -> str:
        return self.fix_in or f"manifests/overrides/{self.env}.yml"


Rule = Callable[[BuildPlan, Context], tuple[BuildPlan, list[Finding]]]


def entry_syntax(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """Conda entries conda would refuse or list twice are dropped; build strings go unless kept."""
    kept: list[str] = []
    seen: dict[str, str] = {}
    stripped: list[str] = []
    findings = []
    for text in plan.conda:
        entry = parse_conda(text)
        if entry is None or not CONDA_NAME.match(entry.name):
            findings.append(ctx.finding(RuleName.ENTRY_SYNTAX, text[:200], "dropped",
                                        f"{text[:200]!r} is not a conda package spec", ERROR,
                                        f"write it as name=version in {ctx.override_hint()}"))
        elif entry.name in seen:
            findings.append(ctx.finding(RuleName.ENTRY_SYNTAX, entry.name, "dropped",
                                        f"listed twice in the conda section ({seen[entry.name]!r} and {text!r}); "
                                        "the first is kept", WARNING))
        else:
            seen[entry.name] = text
            if entry.build and not ctx.keep_builds:
                stripped.append(entry.name)
                text = without_build(entry)
            kept.append(text)
    if stripped:
        findings.append(ctx.finding(
            RuleName.ENTRY_SYNTAX, ", ".join(stripped), f"dropped the build string of {len(stripped)} entries",
            "build strings name one platform's builds (they differ between linux-64, win-64 and osx-64 and "
            "channels rebuild); the solver picks the build for the target platform"))
    return replace(plan, conda=tuple(kept)), findings


def pip_syntax(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """pip lines pip would refuse, that hold control characters or repeat a distribution are dropped;
    loose pins are flagged. Option lines are pip_options' business."""
    kept: list[str] = []
    seen: dict[str, str] = {}
    findings = []
    has_index = any(option is not None and option.adds_index for option in map(PipOption.of, plan.pip))
    for text in plan.pip:
        bad = control_character(text)
        entry = parse_pip(text) if bad is None else None
        if entry is None:
            why = f"holds the control character {bad}" if bad else "is not a pip requirement"
            findings.append(ctx.finding(RuleName.PIP_SYNTAX, text[:200], "dropped", f"{text[:200]!r} {why}",
                                        ERROR, f"write it as name==version in {ctx.override_hint()}"))
            continue
        if entry.key and entry.key in seen:
            findings.append(ctx.finding(RuleName.PIP_SYNTAX, entry.name, "dropped",
                                        f"listed twice in the pip section ({seen[entry.key]!r} and {text!r})", WARNING))
            continue
        if entry.key:
            seen[entry.key] = text
            loose = _loose_pin(ctx, entry, has_index)
            findings += [loose] if loose else []
        kept.append(text)
    return replace(plan, pip=tuple(kept)), findings


def _loose_pin(ctx: Context, entry: PipEntry, has_index: bool) -> Finding | None:
    """A pin that may not reproduce what current has: unpinned, a source checkout, a local version label."""
    if not entry.pinned:
        return ctx.finding(RuleName.PIP_SYNTAX, entry.name, "kept", f"{entry.text!r} pins no exact version: pip "
                           "installs whatever is newest", WARNING,
                           f"pin the version current has in {ctx.override_hint()}")
    if entry.version in _SOURCE_VERSIONS:
        return ctx.finding(RuleName.PIP_SYNTAX, entry.name, "kept", f"version {entry.version} is what an unversioned "
                           "source checkout reports: probably a local or editable install that no index has", WARNING,
                           f"install it from its repository (git+URL@commit) in {ctx.override_hint()}")
    if "+" in entry.version and not has_index:
        return ctx.finding(RuleName.PIP_SYNTAX, entry.name, "kept", f"{entry.version} has a local version label: "
                           "only the index it came from has it", WARNING,
                           "add that index to pip_args in site.toml (or environments.toml)")
    return None


def pip_options(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """Option lines of a pip section: ones that read files or add indexes or hosts run only if the site's
    (or the environment's) pip_args give them too; harmless ones are kept; each gets a finding. An
    environment's own pip_args may not make pip write somewhere: only the site's may."""
    kept: list[str] = []
    findings = _writing_pip_args(ctx)
    allowed = set(PipOption.all_in((*ctx.site_pip_args, *ctx.env_pip_args)))
    for text in plan.pip:
        option = PipOption.of(text)
        if option is None:
            kept.append(text)
            continue
        if option in allowed:
            findings.append(ctx.finding(RuleName.PIP_OPTIONS, text, "dropped", "the site's pip_args already give pip "
                                        "this option"))
        elif option.harmless:
            kept.append(text)
            findings.append(ctx.finding(RuleName.PIP_OPTIONS, text, "kept", f"{option.name} changes how pip picks "
                                        "versions, nothing else", WARNING))
        else:
            what = ("reads the file it names" if option.reads_file else "adds a package source" if option.adds_index
                    else "is not an option condaqa passes on")
            findings.append(ctx.finding(
                RuleName.PIP_OPTIONS, text, "dropped: not allowed by the site", f"{text!r} {what}; a spec from an "
                "environment's owner may not point pip at files, indexes or hosts the site did not choose", ERROR,
                "if the site trusts it, add it to pip_args in site.toml; else remove the line"))
    return replace(plan, pip=tuple(kept)), findings


def _writing_pip_args(ctx: Context) -> list[Finding]:
    """An error finding per option of the environment's pip_args that makes pip write to a path (a log,
    a report, a target, a cache) that the site's own pip_args do not give: pip runs as root."""
    trusted = set(PipOption.all_in(ctx.site_pip_args))
    return [ctx.finding(RuleName.PIP_OPTIONS, option.name, "build stopped at preflight",
                        f"pip_args {option.name} {option.value[:200]!r} in environments.toml makes pip write there, as "
                        "the person qualifying, wherever that is", ERROR,
                        f"remove {option.name} from the pip_args of {ctx.env}; if the site needs it, give it in "
                        "pip_args of site.toml")
            for option in PipOption.all_in(ctx.env_pip_args) if option.writes_path and option not in trusted]


def listed_twice(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """A distribution that is both a conda record and a pip entry is dropped from pip."""
    conda = _conda_versions(plan, ctx)
    kept, findings = [], []
    for text in plan.pip:
        entry = parse_pip(text)
        if entry is None or not entry.key or entry.key not in conda:
            kept.append(text)
            continue
        name, version = conda[entry.key]
        same = not entry.version or entry.version == version
        findings.append(ctx.finding(
            RuleName.LISTED_TWICE, name, "dropped from pip",
            f"{text!r} is also the conda package {name} {version}" + ("" if same else
            f"; pip had {entry.version} over it, qa gets conda's {version}"),
            INFO if same else WARNING, "" if same else f"pin {name}={entry.version} in {ctx.override_hint()} "
            "if the pip version is the one needed"))
    return replace(plan, pip=tuple(kept)), findings


def _conda_versions(plan: BuildPlan, ctx: Context) -> dict[str, tuple[str, str]]:
    """normalised name -> (conda name, version), from current's records when known."""
    if ctx.installed is not None:
        return {canonicalize_name(p.name): (p.name, p.version) for p in ctx.installed.conda}
    out: dict[str, tuple[str, str]] = {}
    for text in plan.conda:
        entry = parse_conda(text)
        if entry is not None:
            out[canonicalize_name(entry.name)] = (entry.name, entry.version.removeprefix("==").removesuffix(".*"))
    return out


def direct_url(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """pip installs from git, an archive URL or a directory leave the pip list for post-create steps."""
    sources = {d.key: d.direct_url for d in ctx.installed.pip if d.direct_url} if ctx.installed else {}
    kept, post, findings = [], list(plan.post), []
    for text in plan.pip:
        entry = parse_pip(text)
        if entry is not None and entry.key in sources:
            step, finding = _from_direct_url(ctx, entry.name, sources[entry.key] or {})
        elif entry is not None and entry.url:
            requirement = f"-e {entry.url}" if entry.editable and not entry.text.startswith("-") else entry.text
            step, finding = _from_url(ctx, entry.name or entry.url, requirement, entry.url, entry.editable)
        else:
            kept.append(text)
            continue
        if step is None and finding.severity is not ERROR:
            kept.append(text)
        elif step is not None:
            post.append(step)
        findings.append(finding)
    return replace(plan, pip=tuple(kept), post=tuple(post)), findings


def _from_direct_url(ctx: Context, name: str, data: dict[str, Any]) -> tuple[PostStep | None, Finding]:
    """PEP 610: vcs_info, archive_info or dir_info say where pip installed `name` from."""
    url = str(data.get("url", ""))
    if data.get("invalid") or not url:
        return None, ctx.finding(RuleName.DIRECT_URL, name, "kept in pip", "its direct_url.json is unreadable; "
                                 "qa installs the release of that name and version from the index", WARNING)
    bad = control_character(url + str(data.get("subdirectory", "")))
    if bad is not None:
        return None, ctx.finding(RuleName.DIRECT_URL, name, "dropped: refused", f"its direct_url.json names a source "
                                 f"with the control character {bad}; condaqa does not pass that to pip", ERROR,
                                 f"pin a released version of {name} in {ctx.override_hint()}")
    fragment = f"#subdirectory={data['subdirectory']}" if data.get("subdirectory") else ""
    if isinstance(data.get("vcs_info"), dict):
        vcs = data["vcs_info"]
        requirement = f"{vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}{fragment}"
        at = f" at commit {str(vcs.get('commit_id', '?'))[:12]}"
        return _from_url(ctx, name, requirement, requirement, False, at, url)
    if isinstance(data.get("dir_info"), dict):
        editable = bool(data["dir_info"].get("editable"))
        path = local_path(url)
        return _from_url(ctx, name, f"-e {path}" if editable else str(path), url, editable)
    return _from_url(ctx, name, f"{name} @ {url}{fragment}", url, False)


def _from_url(ctx: Context, name: str, requirement: str, url: str, editable: bool,
              detail: str = "", shown: str = "") -> tuple[PostStep | None, Finding]:
    path = local_path(url)
    vcs = url.split("+", 1)[0] if url.startswith(VCS_SCHEMES) else ""
    archive = url.split("#")[0].endswith(_ARCHIVES)
    kind = vcs or ("a local directory" if path is not None and not archive else
                   "a local archive" if path is not None else "a URL")
    if path is not None and path not in ctx.present:
        return None, ctx.finding(
            RuleName.DIRECT_URL, name, "dropped: needs manual action",
            f"{'an editable install' if editable else 'installed'} from {path}, which no longer exists",
            ERROR, f"reinstall {name} from its repository or a release and pin that in {ctx.override_hint()}")
    shown = shown or (url.split("+", 1)[1] if vcs else url)
    if path is not None and not vcs and not ctx.local_sources:
        return None, ctx.finding(
            RuleName.LOCAL_SOURCE, name, "dropped: not allowed", f"installed from {kind} {shown}: building it would "
            "run that folder's or archive's own build code as the person qualifying", ERROR,
            f"set local_sources = true for {ctx.env} in environments.toml if that source is trusted, or pin a "
            f"released version in {ctx.override_hint()}")
    reason = f"installed from {kind} {shown}{detail}: no index has that build"
    severity, hint = INFO, ""
    if editable:
        reason += "; editable, so qa gets the working copy as it is now"
        severity = WARNING
    elif vcs and not _COMMIT.search(requirement):
        reason += "; it follows a branch or tag, so qa gets whatever that points to now"
        severity, hint = WARNING, "pin a commit: git+URL@<commit>"
    step = PostStep(StepKind.PIP, requirement, f"{name} from {kind}")
    return step, ctx.finding(RuleName.DIRECT_URL, name, f"moved to a post-create step: pip install {requirement}",
                             reason, severity, hint)


def local_sources(plan: BuildPlan, installed: PrefixContents | None) -> set[Path]:
    """Every path on this machine the plan's pip entries or current's PEP 610 records install from."""
    urls = [e.url for e in filter(None, map(parse_pip, plan.pip)) if e.url]
    urls += [str((d.direct_url or {}).get("url", "")) for d in installed.pip] if installed else []
    return {p for p in map(local_path, urls) if p is not None}


def noarch_in_pip(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """A pip entry that the site's channels have as a noarch package of the same version moves to conda."""
    if ctx.index is None:
        return plan, []
    names: dict[str, str] = {canonicalize_name(n): n for n in ctx.index.names()}
    conda, kept, findings = list(plan.conda), [], []
    for text in plan.pip:
        entry = parse_pip(text)
        name = names.get(entry.key) if entry is not None and entry.version and not entry.url else None
        if entry is None or name is None or not _has_version(ctx.index.noarch_versions(name), entry.version):
            kept.append(text)
            continue
        conda.append(f"{name}={entry.version}")
        findings.append(ctx.finding(RuleName.NOARCH_IN_PIP, name,
                                    f"moved to the conda section as {name}={entry.version}",
                                    f"{text!r} is published in the site's channels as a noarch conda package "
                                    "of the same version; conda then knows about it and its dependencies"))
    return replace(plan, conda=tuple(conda), pip=tuple(kept)), findings


def _has_version(versions: Iterable[str], wanted: str) -> bool:
    try:
        target = rattler.Version(wanted)
        return any(rattler.Version(v) == target for v in versions)
    except InvalidVersionError:  # a pip version rattler cannot parse matches nothing
        return False


def legacy_noarch(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """Packages named in legacy-noarch.txt are installed one at a time after the environment exists."""
    if not ctx.legacy:
        return plan, []
    kept, post, findings = [], list(plan.post), []
    for text in plan.conda:
        entry = parse_conda(text)
        if entry is None or entry.name not in ctx.legacy:
            kept.append(text)
            continue
        post.append(PostStep(StepKind.CONDA, text, "legacy noarch"))
        findings.append(ctx.finding(RuleName.LEGACY_NOARCH, entry.name, "installed on its own after the environment "
                                    f"is created ({text})", "listed in manifests/legacy-noarch.txt: a legacy noarch "
                                    "package that is not solved together with the rest"))
    return replace(plan, conda=tuple(kept), post=tuple(post)), findings


def missing_version(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """Preflight: every conda entry must exist in the site's channels for qa's platform or noarch."""
    if ctx.index is None:
        return plan, []
    findings = []
    wanted = [*plan.conda, *(s.requirement for s in plan.post if s.kind is StepKind.CONDA)]
    for entry in filter(None, map(parse_conda, wanted)):
        if entry.name.startswith("__"):
            continue
        available = ctx.index.lookup(entry.name)
        versions = available.all_versions()
        where = f"{', '.join(available.by_channel) or 'the channels'} ({ctx.platform or 'qa platform'}, noarch)"
        if ctx.index.unreadable and (not versions or (entry.version and not _any_match(entry.version, versions))):
            continue  # it may be in a channel that could not be read: planning's warning says so
        if not versions:
            findings.append(ctx.finding(RuleName.MISSING_VERSION, entry.name, "build stopped at preflight",
                                        f"{entry.text}: no package {entry.name} in {where}", ERROR,
                                        f"remove it or replace it in {ctx.override_hint()}"))
        elif entry.version and not _any_match(entry.version, versions):
            near = nearest_versions(entry.version, versions)
            findings.append(ctx.finding(
                RuleName.MISSING_VERSION, entry.name, "build stopped at preflight",
                f"{entry.text}: no such version in {where}; nearest available: {', '.join(near)}", ERROR,
                f"pin one of {', '.join(near)} in {ctx.override_hint()}, or add {entry.name} "
                f"{_base_version(entry.version)} to one of the site's channels (none of them holds it)"))
    return plan, findings


def conda_version(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """conda before 4.11 reads python 3.10 as 3.1 (conda #10969): such an environment cannot be built with it."""
    if not ctx.conda_version or _version(ctx.conda_version) >= _version("4.11"):
        return plan, []
    python = next((e for e in filter(None, map(parse_conda, plan.conda)) if e.name == "python"), None)
    base = _base_version(python.version) if python is not None else ""
    if not base or _version(base) < _version("3.10"):
        return plan, []
    return plan, [ctx.finding(RuleName.CONDA_VERSION, "python", "build stopped at preflight",
                              f"{python.text if python else 'python'} needs conda 4.11 or newer; the qa "
                              f"installation has conda {ctx.conda_version}, which reads python 3.10 as 3.1", ERROR,
                              'build it with engine = "rattler", or install a conda of 4.11 or newer as qa')]


def _version(text: str) -> rattler.Version:
    try:
        return rattler.Version(text)
    except InvalidVersionError:  # an unparsable version sorts first
        return rattler.Version("0")


def _any_match(spec: str, versions: list[str]) -> bool:
    try:
        matcher = rattler.VersionSpec(spec)
    except InvalidVersionSpecError:  # unparsable specs are entry-syntax's business
        return True
    return any(matcher.matches(rattler.Version(v)) for v in versions)


def _base_version(spec: str) -> str:
    return re.sub(r"^[=<>!~ ]+", "", spec.split(",")[0]).removesuffix(".*").removesuffix("*").strip()


def nearest_versions(spec: str, versions: list[str], around: int = 2) -> list[str]:
    """Up to `around` available versions on each side of the one asked for, in version order."""
    ordered = sorted(versions, key=rattler.Version)
    try:
        position = bisect.bisect_left([rattler.Version(v) for v in ordered], rattler.Version(_base_version(spec)))
    except InvalidVersionError:  # no comparable version asked for: show the newest
        return ordered[-2 * around:]
    return ordered[max(0, position - around):position + around]


RULES: tuple[Rule, ...] = (entry_syntax, pip_syntax, pip_options, listed_twice, direct_url, noarch_in_pip,
                           legacy_noarch, missing_version, conda_version)


def apply_rules(plan: BuildPlan, ctx: Context, rules: Iterable[Rule] = RULES) -> tuple[BuildPlan, list[Finding]]:
    findings: list[Finding] = []
    for rule in rules:
        plan, found = rule(plan, ctx)
        findings += found
    return plan, findings
