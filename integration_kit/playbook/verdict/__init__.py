"""The verdict of a run, whatever the kind: checks, findings, ``verdict.json`` and JUnit XML."""

from integration_kit.playbook.verdict.junit import junit_xml, write_junit
from integration_kit.playbook.verdict.verdict import VERDICT_FILE, Check, Finding, Verdict

__all__ = ["VERDICT_FILE", "Check", "Finding", "Verdict", "junit_xml", "write_junit"]
