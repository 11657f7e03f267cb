"""Turn a spec into a buildable plan: small pure rules, every change a Finding.

A rule takes a BuildPlan and a Context (what is known of the site's channels and of the
environment as it is in current) and returns the changed plan with one Finding per change,
so the owner is told exactly what changed and why. `apply_rules` runs them in order;
`sanitize_file` runs them on any environment file (sources.py picks an environment's spec).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import rattler

from condaqa.channels import RepodataIndex
from condaqa.errors import ConfigError, SpecError
from condaqa.findings import ERROR, INFO, WARNING, Finding
from condaqa.manifest import Environment
from condaqa.plan import BuildPlan, PostStep
from condaqa.prefix import PrefixContents, normalize
from condaqa.requirements import VCS_SCHEMES, PipEntry, local_path, parse_conda, parse_pip, without_build
from condaqa.site import Site
from condaqa.spec import EnvSpec, parse_spec


_CONDA_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.+-]*$")
_COMMIT = re.compile(r"@[0-9a-f]{7,40}(?:[#&]|$)")
_SOURCE_VERSIONS = ("0.0.0", "0.0.0.dev0", "0.0.1.dev0")


@dataclass(frozen=True)
class Context:
    """What the rules may consult; None means 'not known here' and the rules needing it skip."""

    env: str
    legacy: frozenset[str] = frozenset()
    index: RepodataIndex | None = None  # the site's channels (preflight, noarch look-ups)
    installed: PrefixContents | None = None  # the environment as it is in current
    keep_builds: bool = False
    platform: str = ""
    fix_in: str = ""  # where the owner fixes the spec; default: the environment's override file

    def finding(self, rule: str, package: str, action: str, reason: str, severity: str = INFO,
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
        if entry is None or not _CONDA_NAME.match(entry.name):
            findings.append(ctx.finding("entry-syntax", text, "dropped", f"{text!r} is not a conda package spec",
                                        ERROR, f"write it as name=version in {ctx.override_hint()}"))
        elif entry.name in seen:
            findings.append(ctx.finding("entry-syntax", entry.name, "dropped",
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
            "entry-syntax", ", ".join(stripped), f"dropped the build string of {len(stripped)} entries",
            "build strings name one platform's builds (they differ between linux-64, win-64 and osx-64 and "
            "channels rebuild); the solver picks the build for the target platform"))
    return replace(plan, conda=tuple(kept)), findings


def pip_syntax(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """pip lines pip would refuse, or that repeat a distribution, are dropped; loose ones are flagged."""
    kept: list[str] = []
    seen: dict[str, str] = {}
    findings = []
    has_index = any(p.startswith(("-i", "--index-url", "--extra-index-url", "-f", "--find-links")) for p in plan.pip)
    for text in plan.pip:
        entry = parse_pip(text)
        if entry is None:
            findings.append(ctx.finding("pip-syntax", text, "dropped", f"{text!r} is not a pip requirement",
                                        ERROR, f"write it as name==version in {ctx.override_hint()}"))
            continue
        if entry.key and entry.key in seen:
            findings.append(ctx.finding("pip-syntax", entry.name, "dropped",
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
        return ctx.finding("pip-syntax", entry.name, "kept", f"{entry.text!r} pins no exact version: pip installs "
                           "whatever is newest", WARNING, f"pin the version current has in {ctx.override_hint()}")
    if entry.version in _SOURCE_VERSIONS:
        return ctx.finding("pip-syntax", entry.name, "kept", f"version {entry.version} is what an unversioned source "
                           "checkout reports: probably a local or editable install that no index has", WARNING,
                           f"install it from its repository (git+URL@commit) in {ctx.override_hint()}")
    if "+" in entry.version and not has_index:
        return ctx.finding("pip-syntax", entry.name, "kept", f"{entry.version} has a local version label: only the "
                           "index it came from has it", WARNING,
                           "add that index as an option line (--extra-index-url / --find-links) or to pip_args")
    return None


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
            "listed-twice", name, "dropped from pip",
            f"{text!r} is also the conda package {name} {version}" + ("" if same else
            f"; pip had {entry.version} over it, qa gets conda's {version}"),
            INFO if same else WARNING, "" if same else f"pin {name}={entry.version} in {ctx.override_hint()} "
            "if the pip version is the one needed"))
    return replace(plan, pip=tuple(kept)), findings


def _conda_versions(plan: BuildPlan, ctx: Context) -> dict[str, tuple[str, str]]:
    """normalised name -> (conda name, version), from current's records when known."""
    if ctx.installed is not None:
        return {normalize(p.name): (p.name, p.version) for p in ctx.installed.conda}
    out = {}
    for text in plan.conda:
        entry = parse_conda(text)
        if entry is not None:
            out[normalize(entry.name)] = (entry.name, entry.version.removeprefix("==").removesuffix(".*"))
    return out


def direct_url(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """pip installs from git, an archive URL or a directory leave the pip list for post-create steps."""
    sources = {d.key: d.direct_url for d in ctx.installed.pip if d.direct_url} if ctx.installed else {}
    kept, post, findings = [], list(plan.post), []
    for text in plan.pip:
        entry = parse_pip(text)
        if entry is not None and entry.key in sources:
            step, finding = _from_direct_url(ctx, entry.name, sources[entry.key])
        elif entry is not None and entry.url:
            requirement = f"-e {entry.url}" if entry.editable and not entry.text.startswith("-") else entry.text
            step, finding = _from_url(ctx, entry.name or entry.url, requirement, entry.url, entry.editable)
        else:
            kept.append(text)
            continue
        if step is None and finding.severity != ERROR:
            kept.append(text)
        elif step is not None:
            post.append(step)
        findings.append(finding)
    return replace(plan, pip=tuple(kept), post=tuple(post)), findings


def _from_direct_url(ctx: Context, name: str, data: dict) -> tuple[PostStep | None, Finding]:
    """PEP 610: vcs_info, archive_info or dir_info say where pip installed `name` from."""
    url = str(data.get("url", ""))
    if data.get("invalid") or not url:
        return None, ctx.finding("direct-url", name, "kept in pip", "its direct_url.json is unreadable; "
                                 "qa installs the release of that name and version from the index", WARNING)
    fragment = f"#subdirectory={data['subdirectory']}" if data.get("subdirectory") else ""
    if "vcs_info" in data:
        vcs = data["vcs_info"]
        requirement = f"{vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}{fragment}"
        at = f" at commit {vcs.get('commit_id', '?')[:12]}"
        return _from_url(ctx, name, requirement, requirement, False, at, url)
    if "dir_info" in data:
        editable = bool(data["dir_info"].get("editable"))
        path = local_path(url)
        return _from_url(ctx, name, f"-e {path}" if editable else str(path), url, editable)
    return _from_url(ctx, name, f"{name} @ {url}{fragment}", url, False)


def _from_url(ctx: Context, name: str, requirement: str, url: str, editable: bool,
              detail: str = "", shown: str = "") -> tuple[PostStep | None, Finding]:
    path = local_path(url)
    vcs = url.split("+", 1)[0] if url.startswith(VCS_SCHEMES) else ""
    archive = url.split("#")[0].endswith((".whl", ".tar.gz", ".tar.bz2", ".zip"))
    kind = vcs or ("a local directory" if path is not None and not archive else "a URL")
    if path is not None and not path.exists():
        return None, ctx.finding(
            "direct-url", name, "dropped: needs manual action",
            f"{'an editable install' if editable else 'installed'} from {path}, which no longer exists",
            ERROR, f"reinstall {name} from its repository or a release and pin that in {ctx.override_hint()}")
    shown = shown or (url.split("+", 1)[1] if vcs else url)
    reason = f"installed from {kind} {shown}{detail}: no index has that build"
    severity, hint = INFO, ""
    if editable:
        reason += "; editable, so qa gets the working copy as it is now"
        severity = WARNING
    elif vcs and not _COMMIT.search(requirement):
        reason += "; it follows a branch or tag, so qa gets whatever that points to now"
        severity, hint = WARNING, "pin a commit: git+URL@<commit>"
    step = PostStep("pip", requirement, f"{name} from {kind}")
    return step, ctx.finding("direct-url", name, f"moved to a post-create step: pip install {requirement}",
                             reason, severity, hint)


def noarch_in_pip(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """A pip entry that the site's channels have as a noarch package of the same version moves to conda."""
    if ctx.index is None:
        return plan, []
    names = {normalize(n): n for n in ctx.index.names()}
    conda, kept, findings = list(plan.conda), [], []
    for text in plan.pip:
        entry = parse_pip(text)
        name = names.get(entry.key) if entry is not None and entry.version and not entry.url else None
        if name is None or not _has_version(ctx.index.noarch_versions(name), entry.version):
            kept.append(text)
            continue
        conda.append(f"{name}={entry.version}")
        findings.append(ctx.finding("noarch-in-pip", name, f"moved to the conda section as {name}={entry.version}",
                                    f"{text!r} is published in the site's channels as a noarch conda package "
                                    "of the same version; conda then knows about it and its dependencies"))
    return replace(plan, conda=tuple(conda), pip=tuple(kept)), findings


def _has_version(versions: Iterable[str], wanted: str) -> bool:
    try:
        target = rattler.Version(wanted)
        return any(rattler.Version(v) == target for v in versions)
    except Exception:  # a pip version rattler cannot parse matches nothing
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
        post.append(PostStep("conda", text, "legacy noarch"))
        findings.append(ctx.finding("legacy-noarch", entry.name, "installed on its own after the environment is "
                                    f"created ({text})", "listed in manifests/legacy-noarch.txt: a legacy noarch "
                                    "package that is not solved together with the rest"))
    return replace(plan, conda=tuple(kept), post=tuple(post)), findings


def missing_version(plan: BuildPlan, ctx: Context) -> tuple[BuildPlan, list[Finding]]:
    """Preflight: every conda entry must exist in the site's channels for qa's platform or noarch."""
    if ctx.index is None:
        return plan, []
    findings = []
    wanted = [*plan.conda, *(s.requirement for s in plan.post if s.kind == "conda")]
    for entry in filter(None, map(parse_conda, wanted)):
        if entry.name.startswith("__"):
            continue
        available = ctx.index.lookup(entry.name)
        versions = available.all_versions()
        where = f"{', '.join(available.by_channel) or 'the channels'} ({ctx.platform or 'qa platform'}, noarch)"
        if not versions:
            findings.append(ctx.finding("missing-version", entry.name, "build stopped at preflight",
                                        f"{entry.text}: no package {entry.name} in {where}", ERROR,
                                        f"remove it or replace it in {ctx.override_hint()}"))
        elif entry.version and not _any_match(entry.version, versions):
            near = nearest_versions(entry.version, versions)
            findings.append(ctx.finding(
                "missing-version", entry.name, "build stopped at preflight",
                f"{entry.text}: no such version in {where}; nearest available: {', '.join(near)}", ERROR,
                f"pin one of {', '.join(near)} in {ctx.override_hint()}, or publish "
                f"{entry.name} {_base_version(entry.version)} to the channel again"))
    return plan, findings


def _any_match(spec: str, versions: list[str]) -> bool:
    try:
        matcher = rattler.VersionSpec(spec)
    except Exception:  # unparsable specs are entry-syntax's business
        return True
    return any(matcher.matches(rattler.Version(v)) for v in versions)


def _base_version(spec: str) -> str:
    return re.sub(r"^[=<>!~ ]+", "", spec.split(",")[0]).removesuffix(".*").removesuffix("*").strip()


def nearest_versions(spec: str, versions: list[str], around: int = 2) -> list[str]:
    """Up to `around` available versions on each side of the one asked for, in version order."""
    ordered = sorted(versions, key=rattler.Version)
    try:
        position = bisect.bisect_left([rattler.Version(v) for v in ordered], rattler.Version(_base_version(spec)))
    except Exception:  # no comparable version asked for: show the newest
        return ordered[-2 * around:]
    return ordered[max(0, position - around):position + around]


RULES: tuple[Rule, ...] = (entry_syntax, pip_syntax, listed_twice, direct_url, noarch_in_pip, legacy_noarch,
                           missing_version)


def apply_rules(plan: BuildPlan, ctx: Context, rules: Iterable[Rule] = RULES) -> tuple[BuildPlan, list[Finding]]:
    findings: list[Finding] = []
    for rule in rules:
        plan, found = rule(plan, ctx)
        findings += found
    return plan, findings


def make_plan(site: Site, env: Environment, spec: EnvSpec, ctx: Context | None = None,
              source: str = "export") -> tuple[BuildPlan, list[Finding]]:
    """The plan for `env` from `spec`, with the site's and the environment's pip options, after the rules."""
    plan = BuildPlan(
        env=env.name,
        conda=tuple(spec.dependencies),
        pip=tuple(spec.pip),
        pip_args=tuple(site.expand(a) for a in (*site.pip_args, *env.pip_args)),
        channels=tuple(site.channels),
        source=source,
    )
    return apply_rules(plan, ctx or Context(env.name))


def load_legacy(path: Path) -> frozenset[str]:
    """Package names, one a line; `#` starts a comment. A missing file names nothing."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return frozenset()
    names = set()
    for number, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not _CONDA_NAME.match(name):
            raise ConfigError(f"{path}:{number}: {name!r} is not a conda package name")
        names.add(name)
    return frozenset(names)


@dataclass
class Sanitized:
    """An environment file after the rules: the buildable spec, its post-create steps, the findings."""

    spec: EnvSpec
    post: tuple[PostStep, ...]
    findings: list[Finding]


def sanitize_spec(spec: EnvSpec, ctx: Context) -> Sanitized:
    """Run the rules on a spec read from any file; keys conda's env format lacks are named, not kept."""
    findings = []
    if spec.prefix:
        findings.append(ctx.finding("spec-keys", "prefix", "dropped", f"prefix: {spec.prefix} names the "
                                    f"exporting machine's folder{_platform_of(spec.prefix)}; conda ignores it"))
    for key in spec.extra:
        findings.append(ctx.finding("spec-keys", key, "dropped", f"{key!r} is not a key of conda's environment "
                                    "format (name, channels, dependencies, variables)", WARNING))
    plan = BuildPlan(env=spec.name, conda=tuple(spec.dependencies), pip=tuple(spec.pip), channels=tuple(spec.channels))
    plan, found = apply_rules(plan, ctx)
    out = EnvSpec(spec.name, list(spec.channels), list(plan.conda), list(plan.pip), dict(spec.variables))
    return Sanitized(out, plan.post, findings + found)


def _platform_of(prefix: str) -> str:
    if re.match(r"^[A-Za-z]:\\", prefix):
        return " (exported on Windows: win-only packages such as vc or vs2015_runtime will not exist for Linux)"
    if prefix.startswith(("/Users/", "/opt/anaconda3")):
        return " (probably exported on macOS: osx-only packages will not exist for Linux)"
    return ""


def sanitize_file(path: Path, *, index: RepodataIndex | None = None, legacy: frozenset[str] = frozenset(),
                  keep_builds: bool = False, platform: str = "") -> Sanitized:
    """`condaqa sanitize FILE`: SpecError (naming the file) for anything that is not an environment file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    if text.lstrip().startswith("# packages in environment at"):
        raise SpecError(f"{path}: this is `conda list` output, not an environment file; write one with "
                        "`conda env export -n ENV --no-builds > FILE.yml` (or `condaqa export`)")
    spec = parse_spec(text, str(path), default_name=path.stem)
    if not spec.dependencies and not spec.pip:
        raise SpecError(f"{path}: the environment file lists no dependencies")
    return sanitize_spec(spec, Context(spec.name, legacy, index, None, keep_builds, platform, str(path)))
