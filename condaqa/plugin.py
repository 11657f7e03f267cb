"""The pytest11 entry point: pytest loads it in every project of the venv, so it holds the options and
decides whether a site is active, and imports nothing heavier until one is.

A site is active when one is named (`--site PATH`, $CONDAQA_SITE, the `condaqa_site` ini key) or
pytest's rootdir holds a manifests/site.toml whose [site] table names a root; another project's
own manifests/site.toml is left alone. Then harness.py is registered: the markers, fixtures,
parametrization, outcomes forwarded and reports of a qualification (or a cutover run). Without a
site the plugin does nothing at all, except refuse to run its own suite, which qualifies a site.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from condaqa.sitefile import DEFAULT_SITE, SITE_ENV_VAR, SUITE


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("condaqa", "condaqa qualification")
    group.addoption("--site", metavar="PATH", help=f"site.toml to qualify (default: ${SITE_ENV_VAR}, the condaqa_site "
                    "ini key, else manifests/site.toml under the rootdir if its [site] table names a root)")
    group.addoption("--rebuild", action="store_true", help="rebuild environments even when their plan is unchanged")
    group.addoption("--shard", metavar="I/N", help="run only shard I of N (1-based): whole environments, balanced by "
                    "the last run's durations; writes reports/junit-I-of-N.xml, the last shard merges them (default: "
                    "$CI_NODE_INDEX/$CI_NODE_TOTAL of a GitLab parallel job, or a Slurm array task's "
                    "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    parser.addini("condaqa_site", "site.toml to qualify, relative to the ini file", default="")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    path, passed_over = _site_file(config)
    if path is None:
        if _names_the_suite(config):
            why = f"; {passed_over}" if passed_over else ""
            raise pytest.UsageError(f"condaqa.suite qualifies a site, and none is named: give --site PATH (or set "
                                    f"${SITE_ENV_VAR}, or the condaqa_site ini key){why}")
        return
    from condaqa import harness

    harness.activate(config, path)
    _default_args(config)


def _site_file(config: pytest.Config) -> tuple[str | None, str]:
    """The site this run qualifies, or None and why a manifests/site.toml found under the rootdir is not one."""
    named = config.getoption("site") or os.environ.get(SITE_ENV_VAR)
    if named:
        return str(named), ""
    ini = str(config.getini("condaqa_site"))
    if ini and config.inipath is not None:
        return str(config.inipath.parent / ini), ""
    default = config.rootpath / DEFAULT_SITE
    if not default.is_file():
        return None, ""
    from condaqa.site import unclaimed

    why = unclaimed(default)
    return (None, f"{default} is not a condaqa site file ({why})") if why else (str(default), "")


def _names_the_suite(config: pytest.Config) -> bool:
    """Whether the run would collect condaqa's own suite: by module name with --pyargs, or by path."""
    for arg in config.args:
        target = arg.split("::", 1)[0]
        if config.option.pyargs and (target == "condaqa.suite" or target.startswith("condaqa.suite.")):
            return True
        path = Path(config.invocation_params.dir, target).resolve()
        if path == SUITE or SUITE in path.parents:
            return True
    return False


def _default_args(config: pytest.Config) -> None:
    """A run with a site that names no tests, where pytest found no testpaths, runs the shipped suite and the
    project's ./tests, as scripts/qualify does. pytest lands here also when it took the PATH of `--site PATH`
    for a test path while it looked for its configuration, before any plugin loaded."""
    if config.args_source is not pytest.Config.ArgsSource.INVOCATION_DIR:
        return
    own = config.invocation_params.dir / "tests"
    config.args = [str(SUITE), *([str(own)] if own.is_dir() else [])]
