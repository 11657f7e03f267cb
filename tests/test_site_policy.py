"""The demo site's own rules, kept beside the shipped suite the way a site keeps its own tests.

A site adds checks of its policy here with the plugin's fixtures (`site`, `manifest`,
`kernels`); the qualification suite itself comes from `condaqa.suite`.
"""

from __future__ import annotations

from condaqa.kernels.specs import Kernel
from condaqa.manifest import Environment


def test_every_replicated_environment_names_its_owner(manifest: list[Environment]) -> None:
    """Someone must be asked when a REPLICATE environment fails: environments.toml names an owner for each."""
    unowned = [e.name for e in manifest if e.replicate and not e.owner]
    assert not unowned, f"REPLICATE environments without an owner in environments.toml: {', '.join(unowned)}"


def test_every_kernel_has_a_display_name(kernels: list[Kernel]) -> None:
    """Users pick kernels by their display name in JupyterLab: none may be left to the folder name."""
    nameless = [str(k.spec_file) for k in kernels if not k.display_name or k.display_name == k.name]
    assert not nameless, f"kernel specs without a display name: {', '.join(nameless)}"
