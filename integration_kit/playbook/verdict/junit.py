"""The verdict as JUnit XML, so CI systems (GitHub Actions, GitLab CI, Jenkins) show each objective natively.

One ``<testsuite>`` per integration; one ``<testcase>`` per objective and scenario (its tightest scope, as the
verdict table shows it), failed when the objective is missed, skipped when there was nothing to measure. A
scenario whose run was invalid (the test bench could not keep up) is an ``<error>``, never a ``<failure>``: one
``run validity`` case saying why, its objectives skipped. An integration whose run could not be judged (a spec that
does not load, a stage that failed) is one ``<testcase>`` with an ``<error>`` saying why. The XML is written with
:mod:`xml.etree.ElementTree`, which escapes every value.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from integration_kit.playbook.verdict.verdict import Verdict

__all__ = ["junit_xml", "write_junit"]


def junit_xml(verdicts: Sequence[Verdict], errors: Mapping[str, str] | None = None) -> str:
    """The JUnit XML document of ``verdicts``, and of ``errors`` (integration -> why it has no verdict)."""
    root = ET.Element("testsuites", name="integration-kit")
    total = failed = broken = 0
    for verdict in verdicts:
        suite = ET.SubElement(root, "testsuite", name=verdict.integration)
        cases = failures = invalid = 0
        for scenario, why in verdict.invalid.items():
            case = ET.SubElement(suite, "testcase", classname=f"{verdict.integration}.{scenario}", name="run validity")
            ET.SubElement(case, "error", message=why, type="invalid run")
            cases, invalid = cases + 1, invalid + 1
        for objective, row in verdict.cells().items():
            for scenario, check in row.items():
                case = ET.SubElement(
                    suite, "testcase", classname=f"{verdict.integration}.{scenario}", name=f"{objective}"
                )
                ET.SubElement(case, "system-out").text = f"{check.scope}: {check.describe()}"
                cases += 1
                if scenario in verdict.invalid:
                    ET.SubElement(case, "skipped", message=f"not judged: {verdict.invalid[scenario]}")
                elif check.state == "no data":
                    ET.SubElement(case, "skipped", message=f"no data: {check.describe()}")
                elif not check.passed:
                    failures += 1
                    ET.SubElement(case, "failure", message=check.describe(), type="objective missed")
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        suite.set("errors", str(invalid))
        total, failed, broken = total + cases, failed + failures, broken + invalid
    for integration, why in (errors or {}).items():
        suite = ET.SubElement(root, "testsuite", name=integration, tests="1", failures="0", errors="1")
        case = ET.SubElement(suite, "testcase", classname=integration, name="run")
        ET.SubElement(case, "error", message=why, type="run failed")
        total, broken = total + 1, broken + 1
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", str(broken))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: str | Path, verdicts: Sequence[Verdict], errors: Mapping[str, str] | None = None) -> Path:
    """Write :func:`junit_xml` to ``path`` (its folder created) and return it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(junit_xml(verdicts, errors), encoding="utf-8")
    return target
