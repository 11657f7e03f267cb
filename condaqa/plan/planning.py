"""The plan of one manifest environment: which spec it is rebuilt from, and the site facts its rules see.

An override (manifests/overrides/<env>.yml) wins; else `strategy = "history"` rebuilds from
the specs users asked for (conda-meta/history); else the exact pins exported from current.
This is the only module that reads overrides, manifests/legacy-noarch.txt and current's
prefix for a plan; the rules themselves (rules.py) stay pure.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from packaging.utils import canonicalize_name

from condaqa.channels import RepodataIndex, qa_platform
from condaqa.errors import ConfigError
from condaqa.inputs import ENVIRONMENT_FILE, PACKAGE_LIST, read_text
from condaqa.manifest import Environment
from condaqa.plan.entries import CONDA_NAME, local_path, parse_conda, parse_pip
from condaqa.plan.findings import Finding
from condaqa.plan.model import BuildPlan
from condaqa.plan.rules import Context, apply_rules, local_sources, missing_version
from condaqa.prefix import is_environment, read_prefix
from condaqa.site import Site
from condaqa.spec.export import EDITED_MARK, body_digest, export_environment, export_from_history, spec_path
from condaqa.spec.format import EnvSpec, load_spec
from condaqa.vocab import PlanSource, Rule, Severity, Strategy


def plan_environment(site: Site, env: Environment) -> tuple[BuildPlan, list[Finding]]:
    """Override, history or export; then every rule with the site's channels and current's prefix."""
    ctx = site_context(site, env)
    spec, source, found = source_spec(site, env, ctx)
    if source is PlanSource.OVERRIDE:  # the hand-fixed spec is authoritative: current's pip sources do not rewrite it
        ctx = replace(ctx, installed=None)
    plan = BuildPlan(
        env=env.name,
        conda=tuple(spec.dependencies),
        pip=tuple(spec.pip),
        pip_args=tuple(site.expand(a) for a in (*site.pip_args, *env.pip_args)),
        channels=tuple(site.channels),
        source=source,
    )
    ctx = replace(ctx, present=frozenset(p for p in local_sources(plan, ctx.installed) if p.exists()))
    plan, rules = apply_rules(plan, ctx)  # a channel whose records of a name cannot be read is unreadable from then on
    return plan, [*found, *skipped_preflight(env.name, ctx.index), *edited_export(site, env), *rules]


def override_path(site: Site, env: str) -> Path:
    return site.manifest.parent / "overrides" / f"{env}.yml"


def legacy_path(site: Site) -> Path:
    return site.manifest.parent / "legacy-noarch.txt"


def load_legacy(path: Path) -> frozenset[str]:
    """Package names, one a line; `#` starts a comment. A missing file names nothing."""
    try:
        lines = read_text(path, PACKAGE_LIST, ConfigError).splitlines()
    except FileNotFoundError:
        return frozenset()
    names = set()
    for number, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not CONDA_NAME.match(name):
            raise ConfigError(f"{path}:{number}: {name[:80]!r} is not a conda package name")
        names.add(name)
    return frozenset(names)


def source_spec(site: Site, env: Environment, ctx: Context) -> tuple[EnvSpec, PlanSource, list[Finding]]:
    """The spec to build from: the override if there is one, else history or the exact pins."""
    path = override_path(site, env.name)
    if path.exists():
        override = with_absolute_paths(load_spec(path), path.parent)
        exported = export_environment(site, env.name, ctx.installed)
        found = [ctx.finding(Rule.OVERRIDE, "*", f"built from {path.name} instead of the exported spec",
                             f"a hand-fixed spec is kept in version control at {path}")]
        return override, PlanSource.OVERRIDE, [*found, *override_differences(ctx, exported, override),
                                               *fixed_by_override(exported, ctx)]
    if env.strategy is Strategy.HISTORY:
        spec = export_from_history(site, env.name, ctx.installed)
        return spec, PlanSource.HISTORY, [ctx.finding(
            Rule.HISTORY, "*", f"built from the {len(spec.dependencies)} specs users asked for",
            'strategy = "history": conda-meta/history instead of exact pins; versions may drift from current '
            "(listed after the build)")]
    return export_environment(site, env.name, ctx.installed), PlanSource.EXPORT, []


def with_absolute_paths(spec: EnvSpec, folder: Path) -> EnvSpec:
    """pip entries naming ./dir or ../dir, meant relative to the override file, made absolute."""
    def absolute(line: str) -> str:
        entry = parse_pip(line)
        path = local_path(entry.url) if entry is not None and entry.url else None
        if path is None or path.is_absolute() or entry is None or entry.url.startswith(("file:", "git+")):
            return line
        return line.replace(entry.url, str((folder / path).resolve()), 1)

    return replace(spec, pip=[absolute(line) for line in spec.pip])


def fixed_by_override(exported: EnvSpec, ctx: Context) -> list[Finding]:
    """What the preflight would stop in the exported spec: the reason the override exists, for the report."""
    _, missing = missing_version(BuildPlan(ctx.env, tuple(exported.dependencies)), ctx)
    return [replace(f, action="fixed by the override", severity=Severity.INFO, hint="") for f in missing]


def override_differences(ctx: Context, exported: EnvSpec, override: EnvSpec) -> list[Finding]:
    """One finding per package the override pins differently from current (or adds, or leaves out)."""
    def table(spec: EnvSpec) -> dict[str, str]:
        conda = filter(None, map(parse_conda, spec.dependencies))
        out: dict[str, str] = {canonicalize_name(e.name): e.text for e in conda}
        out.update({f"pip:{e.key}": e.text for e in filter(None, map(parse_pip, spec.pip)) if e.key})
        return out

    before, after = table(exported), table(override)
    findings = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        package = key.removeprefix("pip:")
        if key not in after:
            change = f"left out (current has {before[key]})"
        elif key not in before:
            change = f"added as {after[key]}"
        else:
            change = f"{after[key]} instead of {before[key]}"
        findings.append(ctx.finding(Rule.OVERRIDE, package, change, "the override differs from current's export here"))
    return findings


def edited_export(site: Site, env: Environment) -> list[Finding]:
    """A spec in env_specs/ edited by hand after `condaqa export` wrote it is not what the build uses: say so."""
    path = spec_path(site, env.name)
    try:
        text = read_text(path, ENVIRONMENT_FILE, ConfigError)
    except (FileNotFoundError, ConfigError):
        return []
    head, _, body = text.partition("\n")
    if not head.startswith(EDITED_MARK) or head.removeprefix(EDITED_MARK).strip() == body_digest(body):
        return []
    return [Finding(Rule.EDITED_EXPORT, env.name, "*", "ignored by the build",
                    f"{path} was edited after `condaqa export` wrote it; the build plans from current's prefix, and "
                    "the next export overwrites that file", Severity.WARNING,
                    f"put hand-fixes in {override_path(site, env.name)} (kept in version control), not in {path}")]


def skipped_preflight(env: str, index: RepodataIndex | None) -> list[Finding]:
    """A warning per channel whose repodata could not be read: the preflight cannot call a pin missing."""
    if index is None:
        return []
    return [Finding(Rule.MISSING_VERSION, env, channel, "preflight cannot tell what is missing", why,
                    Severity.WARNING, "a pin missing everywhere else may be in this channel: the solver decides")
            for channel, why in index.unreadable.items()]


def site_context(site: Site, env: Environment) -> Context:
    """The channels, legacy list, current's prefix and what the site allows, for the rules of `env`."""
    prefix = site.current_installation().env_prefix(env.name)
    installed = read_prefix(prefix) if is_environment(prefix) else None
    conda = site.qa_installation().conda_version() or "" if site.engine == "conda" else ""
    return Context(env.name, load_legacy(legacy_path(site)), RepodataIndex(site), installed, platform=qa_platform(site),
                   site_pip_args=tuple(site.expand(a) for a in site.pip_args),
                   env_pip_args=tuple(site.expand(a) for a in env.pip_args),
                   local_sources=env.local_sources, conda_version=conda)
