"""Which spec an environment of the manifest is rebuilt from, and what the rules may consult.

An override (manifests/overrides/<env>.yml) wins; else `strategy = "history"` rebuilds from
the specs users asked for (conda-meta/history); else the exact pins exported from current.
The context adds the site's channels, manifests/legacy-noarch.txt and current's prefix.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from condaqa.channels import RepodataIndex, qa_platform
from condaqa.errors import ConfigError, PrefixError
from condaqa.findings import INFO, WARNING, Finding
from condaqa.manifest import Environment
from condaqa.plan import BuildPlan
from condaqa.prefix import PrefixContents, is_environment, normalize, read_history, read_prefix, requested_specs
from condaqa.requirements import parse_conda, parse_pip
from condaqa.sanitize import Context, load_legacy, make_plan, missing_version
from condaqa.site import Site
from condaqa.spec import EnvSpec, export_environment, load_spec, site_channel_names, spec_from_prefix


def plan_environment(site: Site, env: Environment) -> tuple[BuildPlan, list[Finding]]:
    """Override, history or export; then every rule with the site's channels and current's prefix."""
    ctx, findings = site_context(site, env.name)
    spec, source, found = source_spec(site, env, ctx)
    if source == "override":  # the hand-fixed spec is authoritative: current's pip sources do not rewrite it
        ctx = replace(ctx, installed=None)
    plan, rules = make_plan(site, env, spec, ctx, source)
    return plan, [*found, *findings, *rules]


def override_path(site: Site, env: str) -> Path:
    return site.manifest.parent / "overrides" / f"{env}.yml"


def legacy_path(site: Site) -> Path:
    return site.manifest.parent / "legacy-noarch.txt"


def source_spec(site: Site, env: Environment, ctx: Context) -> tuple[EnvSpec, str, list[Finding]]:
    """The spec to build from: the override if there is one, else history or the exact pins."""
    path = override_path(site, env.name)
    if path.is_file():
        override, exported = load_spec(path), export_environment(site, env.name)
        found = [ctx.finding("override", "*", f"built from {path.name} instead of the exported spec",
                             f"a hand-fixed spec is kept in version control at {path}")]
        return override, "override", found + override_differences(ctx, exported, override) + fixed_by_override(
            exported, ctx)
    if env.strategy == "history":
        spec = export_from_history(site, env.name)
        return spec, "history", [ctx.finding(
            "history", "*", f"built from the {len(spec.dependencies)} specs users asked for",
            'strategy = "history": conda-meta/history instead of exact pins; versions may drift from current '
            "(listed after the build)")]
    return export_environment(site, env.name), "export", []


def fixed_by_override(exported: EnvSpec, ctx: Context) -> list[Finding]:
    """What the preflight would stop in the exported spec: the reason the override exists, for the report."""
    _, missing = missing_version(BuildPlan(ctx.env, tuple(exported.dependencies)), ctx)
    return [replace(f, action="fixed by the override", severity=INFO, hint="") for f in missing]


def override_differences(ctx: Context, exported: EnvSpec, override: EnvSpec) -> list[Finding]:
    """One finding per package the override pins differently from current (or adds, or leaves out)."""
    def table(spec: EnvSpec) -> dict[str, str]:
        out = {normalize(e.name): e.text for e in filter(None, map(parse_conda, spec.dependencies))}
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
        findings.append(ctx.finding("override", package, change, "the override differs from current's export here"))
    return findings


def site_context(site: Site, env: str) -> tuple[Context, list[Finding]]:
    """The channels, legacy list and current's prefix of `env`, for plan_environment."""
    findings = []
    try:
        index: RepodataIndex | None = RepodataIndex(site)
    except ConfigError as exc:
        index = None
        findings.append(Finding("missing-version", env, "*", "preflight skipped", str(exc), WARNING))
    prefix = site.installation(site.current_name).env_prefix(env)
    installed = read_prefix(prefix) if is_environment(prefix) else None
    return Context(env, load_legacy(legacy_path(site)), index, installed, platform=qa_platform(site)), findings


def export_from_history(site: Site, name: str) -> EnvSpec:
    """`conda env export --from-history` read from the prefix: the specs users asked for, plus the pip section."""
    prefix = site.installation(site.current_name).env_prefix(name)
    if not is_environment(prefix):
        raise PrefixError(f"{prefix}: environment {name!r} does not exist in {site.current}")
    contents = read_prefix(prefix)
    wanted = requested_specs(read_history(prefix), {p.name for p in contents.conda})
    if not wanted:
        raise PrefixError(f"{prefix}/conda-meta/history records no requested specs (environments made by "
                          'rattler or pixi leave it empty); use strategy = "pins" for it')
    spec = spec_from_prefix(name, contents, site_channel_names(site))
    spec.dependencies = list(wanted.values())
    return spec


def history_drift(env: str, current: PrefixContents, built: PrefixContents) -> list[Finding]:
    """After a history build: one finding per package whose version moved away from current's."""
    have = built.versions()
    findings = []
    for name, version in sorted(current.versions().items()):
        package = name.removeprefix("pip:")
        if name not in have:
            findings.append(Finding("history", env, package, f"{version} -> missing",
                                    "the history's specs no longer pull it in", WARNING,
                                    "add it to the environment's specs if it is needed"))
        elif have[name] != version:
            findings.append(Finding("history", env, package, f"{version} -> {have[name]}",
                                    "version drift: the solver chose another version for the history's specs"))
    return findings
