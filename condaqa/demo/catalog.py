"""What the embedded demo site holds: libraries, channels, wheels, environments and kernels.

The default manifests/ and env_checks/ of the repository describe exactly this site.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Library:
    """A small pure-Python library published as a noarch-python conda package or a wheel."""

    name: str
    version: str
    channel: str  # "main", "mpc" or "wheelhouse"
    depends: tuple[str, ...] = ()
    import_name: str = ""  # when the module is not named after the distribution
    withdrawn: bool = False  # removed from its channel after the environments were created

    @property
    def module(self) -> str:
        return self.import_name or self.name.replace("-", "_")

    def source(self) -> str:
        imports = "".join(f"import {d.split()[0].replace('-', '_')}  # noqa: F401\n" for d in self.depends)
        return (
            f'"""{self.name} {self.version}: demo library of the condaqa demo site."""\n'
            f"{imports}"
            f"__version__ = {self.version!r}\n\n\n"
            "def describe():\n"
            f"    return {self.name!r} + ' ' + __version__\n"
        )


LIBRARIES = (
    Library("tabular", "1.0.0", "main"),
    Library("tabular", "1.1.0", "main"),
    Library("tabular", "2.0.0", "main"),
    Library("datefmt", "0.9.0", "main", ("tabular >=1.0",)),
    Library("datefmt", "1.0.0", "main", ("tabular >=1.1",)),
    Library("fixedwidth", "0.3.0", "main", ("tabular",)),
    Library("fixedwidth", "0.4.0", "main", ("tabular >=1.1", "datefmt")),
    Library("ipumsdata", "0.4.1", "mpc", ("tabular >=1.1",)),
    Library("ipumsdata", "0.5.0", "mpc", ("tabular >=1.1",)),
    Library("linkage", "2.1.0", "mpc", ("ipumsdata >=0.4",)),
    Library("linkage", "2.2.0", "mpc", ("ipumsdata >=0.5",)),
    Library("codebook", "1.2.0", "wheelhouse"),
    Library("surveyweights", "0.3.0", "wheelhouse"),
    # The cases spec sanitation handles (manifests/legacy-noarch.txt, manifests/overrides/):
    Library("fixedwidth", "0.3.0", "wheelhouse", ("tabular",)),  # also on the index: users pip-installed it
    Library("DateFmt", "1.0.0", "wheelhouse", ("tabular >=1.1",), import_name="datefmt"),  # datefmt, PyPI spelling
    Library("ipumsdata", "0.4.0", "mpc", ("tabular >=1.1",), withdrawn=True),
    Library("varlabels", "0.2.0", "mpc", ("tabular >=1.1",)),  # a legacy noarch package of the internal channel
    Library("linkage", "2.0.0", "mpc", ("ipumsdata >=0.4",), withdrawn=True),  # production's package cache keeps it
)


@dataclass(frozen=True)
class GitPackage:
    """A pure-Python project in a local git repository under ROOT/git/, pip-installed from a commit."""

    name: str
    version: str


GIT_PACKAGES = (GitPackage("harmonize", "0.2.0"),)


@dataclass(frozen=True)
class DemoEnv:
    name: str
    conda: tuple[str, ...]
    pip: tuple[str, ...] = ()
    kernel: str = ""  # "current" (kernel spec through current) or "versioned" (names v4.3 directly, with env)
    history: tuple[str, ...] = field(default=())  # what the users asked for, conda 4.3 style
    pip_args: tuple[str, ...] = ()  # extra arguments for the pip install of `pip`
    git: tuple[str, ...] = ()  # GIT_PACKAGES installed with pip install git+file:///...@commit
    python: str = ""  # an old python it is built on ("2.7"), where this machine has one (demo/pythons.py)


ENVIRONMENTS = (
    DemoEnv("nhis_reformat", ("python", "pip", "tabular=1.1.0", "fixedwidth=0.4.0"), ("codebook==1.2.0",),
            history=("python", "pip", "fixedwidth")),
    DemoEnv("hlink", ("python", "pip", "linkage=2.2.0", "ipykernel"), kernel="versioned",
            history=("python", "pip", "linkage", "ipykernel")),
    DemoEnv("super_important_jupyter_kernel", ("python", "pip", "tabular=2.0.0", "datefmt=1.0.0", "ipykernel"),
            kernel="current", history=("python", "pip", "tabular", "datefmt >=1.0", "ipykernel")),
    DemoEnv("survey_weights", ("python", "pip", "tabular=2.0.0"), ("surveyweights==0.3.0",),
            history=("python", "pip", "tabular")),
    DemoEnv("old_not_used", ("python", "tabular=1.0.0", "datefmt=0.9.0"), history=("python", "datefmt=0.9")),
    DemoEnv("scratch_jdoe", ("python", "fixedwidth=0.3.0"), history=("python", "fixedwidth=0.3")),
    # One environment per case of spec sanitation; each still qualifies green.
    DemoEnv("git_installed", ("python", "pip", "tabular=1.1.0"), git=("harmonize",),
            history=("python", "pip", "tabular")),
    DemoEnv("listed_twice", ("python", "pip", "tabular=2.0.0", "datefmt=1.0.0"), ("DateFmt==1.0.0",),
            pip_args=("--force-reinstall", "--no-deps"), history=("python", "pip", "datefmt")),
    DemoEnv("noarch_in_pip", ("python", "pip", "tabular=1.1.0"), ("fixedwidth==0.3.0",),
            history=("python", "pip", "tabular=1.1")),
    DemoEnv("legacy_noarch", ("python", "pip", "tabular=1.1.0", "varlabels=0.2.0"),
            history=("python", "pip", "varlabels")),
    DemoEnv("missing_pin", ("python", "pip", "tabular=1.1.0", "ipumsdata=0.4.0"),
            history=("python", "pip", "ipumsdata=0.4.0")),
    DemoEnv("linkage_2019", ("python", "pip", "linkage=2.0.0", "ipumsdata=0.5.0"),
            history=("python", "pip", "linkage=2.0.0")),
    # The old pythons sites leaving conda 4.3 hold, each built where this machine has the interpreter.
    DemoEnv("census_py27", ("python=2.7", "tabular=1.1.0", "fixedwidth=0.4.0"), python="2.7",
            history=("python=2.7", "fixedwidth")),
    DemoEnv("legacy_py36", ("python=3.6", "tabular=2.0.0", "datefmt=1.0.0"), python="3.6",
            history=("python=3.6", "datefmt")),
)

# The demo's kernels are real ipykernel kernels, packaged from condaqa's own installation, less
# two dependencies a kernel only uses when it has them: the debugger (debugpy) and jedi's
# completion (with parso). They are two thirds of the closure's files, and the demo is built,
# copied and qualified in every selftest run.
KERNEL_OPTIONAL = ("debugpy", "jedi")

OLD = "v4.3"
NEW = "v4.8"
