"""What condaqa adds to the JUnit file pytest wrote: each test case's classname `condaqa.<environment>`,
and per-run facts as testsuite properties (the only place junit-10.xsd allows them).

pytest's public JUnit fixtures (`record_testsuite_property`, `record_xml_attribute`) do nothing in
xdist's workers and cannot be called from the controller's hooks, so the file pytest wrote at the end
of the session is rewritten, matching test cases by the names pytest gives them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from condaqa import atomic


def case_names(nodeid: str, prefix: str | None) -> tuple[str, str]:
    """The (classname, name) pytest's junitxml writes for a test: its path dotted, its last part the name."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = names[0].replace("/", ".").removesuffix(".py")
    names[-1] += bracket + params
    return ".".join([*([prefix] if prefix else []), *names[:-1]]), names[-1]


def add_facts(path: Path, classnames: dict[tuple[str, str], str], properties: Sequence[tuple[str, str]]) -> None:
    """Give the test cases named in `classnames` their new classname, and each testsuite `properties`."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        for case in suite.iter("testcase"):
            new = classnames.get((case.get("classname", ""), case.get("name", "")))
            if new is not None:
                case.set("classname", new)
        found = suite.find("properties")
        if found is None:
            found = ET.Element("properties")
            suite.insert(0, found)
        for name, value in properties:
            ET.SubElement(found, "property", name=name, value=value)
    atomic.write_text(path, '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(root, encoding="unicode"))
