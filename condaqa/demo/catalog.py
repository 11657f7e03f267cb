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

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

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
)


@dataclass(frozen=True)
class DemoEnv:
    name: str
    conda: tuple[str, ...]
    pip: tuple[str, ...] = ()
    kernel: str = ""  # "current" (kernel spec through current) or "versioned" (names v4.3 directly)
    history: tuple[str, ...] = field(default=())  # what the users asked for, conda 4.3 style


ENVIRONMENTS = (
    DemoEnv("nhis_reformat", ("python", "pip", "tabular=1.1.0", "fixedwidth=0.4.0"), ("codebook==1.2.0",),
            history=("python", "pip", "fixedwidth")),
    DemoEnv("hlink", ("python", "pip", "linkage=2.2.0"), kernel="versioned", history=("python", "pip", "linkage")),
    DemoEnv("super_important_jupyter_kernel", ("python", "pip", "tabular=2.0.0", "datefmt=1.0.0"), kernel="current",
            history=("python", "pip", "tabular", "datefmt >=1.0")),
    DemoEnv("survey_weights", ("python", "pip", "tabular=2.0.0"), ("surveyweights==0.3.0",),
            history=("python", "pip", "tabular")),
    DemoEnv("old_not_used", ("python", "tabular=1.0.0", "datefmt=0.9.0"), history=("python", "datefmt=0.9")),
    DemoEnv("scratch_jdoe", ("python", "fixedwidth=0.3.0"), history=("python", "fixedwidth=0.3")),
)

OLD = "v4.3"
NEW = "v4.8"
