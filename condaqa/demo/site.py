"""The embedded demo site: whether it is built, and building it once (demo/build.py builds it).

Telling a built demo from a folder of someone else's, and waiting for a build another process
runs, costs nothing; the builder, which makes packages with py-rattler, loads only to build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from condaqa.demo import catalog, pythons
from condaqa.errors import SiteError
from condaqa.site import DEMO_LEFT_OUT, Site

COMPLETE = Path(".condaqa") / "demo-complete"
REAL_CONDA = "production: real conda"  # in COMPLETE when current is a real conda (condaqa demo --real-conda)
NOT_ASKED = "not in this demo site, which holds only some of the catalog's environments"


def holding(only: Collection[str] | None) -> str:
    """The line of COMPLETE that says which environments a partial demo was built with ("" for the whole)."""
    return "" if only is None else f"holding {' '.join(sorted(only))}\n"


def is_built(root: Path) -> bool:
    return (root / COMPLETE).is_file()


def catalog_digest() -> str:
    """Changes with the catalog, so that a demo built by an older condaqa is noticed."""
    text = repr((catalog.LIBRARIES, catalog.GIT_PACKAGES, catalog.ENVIRONMENTS))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    """One demo build at a time (pytest controllers, CLI); the lock lives in condaqa's state folder."""
    state = root / ".condaqa"
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "demo.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_demo(site: Site, progress: Callable[[str], object] = print, real_conda: bool | None = None,
                only: Collection[str] | None = None) -> bool:
    """Build the demo at site.root unless it is there already; True when it was built now. `real_conda`: its
    current is a real conda 4.3.16 from the package registry (demo/realconda.py); None: where this machine
    has a python 3.6 and the registry answers, else made by py-rattler, saying why. `only`: just these of
    the catalog's environments (build_demo)."""
    _refuse_foreign_folder(site.root)
    with _lock(site.root):
        if is_built(site.root):
            built = (site.root / COMPLETE).read_text(encoding="utf-8")
            if f"catalog {catalog_digest()}" not in built:
                raise SiteError(f"{site.root} holds a demo site built by an older condaqa (its environments have "
                                f"changed since); remove it (rm -rf {site.root}) and run again")
            if only is not None and holding(only) not in built:  # None: the demo as it was built, whole or not
                raise SiteError(f"{site.root} holds a demo site of other environments; remove it (rm -rf "
                                f"{site.root}) and run again")
            if real_conda and REAL_CONDA not in built:
                raise SiteError(f"{site.root} holds a demo site whose current is no real conda; remove it "
                                f"(rm -rf {site.root}) and run `condaqa demo --real-conda` again")
            for name, short in _gained(site):
                progress(f"demo: {name} was left out of this demo for want of a python {short}, which this machine "
                         f"now has; remove the demo (rm -rf {site.root}) and run again to include it")
            return False
        _refuse_foreign_folder(site.root)
        from condaqa.demo.build import build_demo  # py-rattler and the package makers: only to build

        build_demo(site, progress, real_conda, only)
        return True


def _refuse_foreign_folder(root: Path) -> None:
    """A folder that holds anything but a demo (being) built is someone's: the demo is not built there."""
    if root.is_dir() and not is_built(root) and any(child.name != ".condaqa" for child in root.iterdir()):
        raise SiteError(f"{root} exists but holds no complete demo site; remove it or point root elsewhere")


def _gained(site: Site) -> list[tuple[str, str]]:
    """The environments the demo was built without for want of an old python that this machine has now
    (name, "2.7"): the built demo stays as it is, and says so."""
    try:
        left_out = json.loads((site.state_dir / DEMO_LEFT_OUT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(left_out, dict):
        return []
    return [(env.name, env.python) for env in catalog.ENVIRONMENTS
            if left_out.get(env.name, NOT_ASKED) != NOT_ASKED and env.python and pythons.find(env.python) is not None]
