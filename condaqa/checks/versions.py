"""Versions: every conda and pip package of current is in qa at the same version."""

from __future__ import annotations

from collections.abc import Collection

from packaging.utils import canonicalize_name

from condaqa.prefix import PrefixContents


def version_differences(current: PrefixContents, qa: PrefixContents, expected: Collection[str] = ()) -> list[str]:
    """One line per conda or pip package of current that qa lacks or has at another version.

    `expected` holds normalised names whose difference a sanitation finding already explains
    (moved from pip to conda, dropped from pip, pinned by an override, drift of a history build).
    """
    want, have = current.versions(), qa.versions()
    lines = []
    for name, version in sorted(want.items()):
        if canonicalize_name(name.removeprefix("pip:")) in expected:
            continue
        if name not in have:
            lines.append(f"{name} {version}: missing in qa")
        elif have[name] != version:
            lines.append(f"{name}: current has {version}, qa has {have[name]}")
    return lines
