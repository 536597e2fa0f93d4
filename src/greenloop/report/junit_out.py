"""JUnit XML of every test in the run's last iteration, for CI systems that read it.

One <testsuite> per phase; blocked tests are <skipped> with the component that
blocked them, timeouts and crashes are <error>, tests that only passed on re-run
keep their <failure> so CI sees the flake.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from greenloop.records import Outcome, PhaseResult, RunResult, TestResult


def junit_xml(run: RunResult) -> str:
    """The run as a JUnit XML document (text, UTF-8 declared)."""
    suites = ET.Element("testsuites", name=f"greenloop {run.run_id}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    phases = run.last.phases if run.last else ()
    for phase in phases:
        suite = _suite(phase, run)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        suites.append(suite)
    for key, value in totals.items():
        suites.set(key, str(value))
    suites.set("time", f"{sum(p.duration_s for p in phases):.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _suite(phase: PhaseResult, run: RunResult) -> ET.Element:
    counts = phase.counts()
    suite = ET.Element(
        "testsuite",
        name=phase.name,
        tests=str(len(phase.tests)),
        failures=str(counts["failed"] + counts["flaky"]),
        errors=str(counts["error"] + counts["timeout"] + counts["crashed"]),
        skipped=str(counts["skipped"] + counts["blocked"]),
        time=f"{phase.duration_s:.3f}",
        timestamp=run.started_at.isoformat(),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("environment", run.environment),
        ("revision", run.revision or ""),
        ("command", phase.command),
        ("status", phase.status.value),
    ):
        ET.SubElement(props, "property", name=name, value=_clean(value))
    for test in phase.tests:
        suite.append(_case(test))
    return suite


def _case(test: TestResult) -> ET.Element:
    path, _, name = test.nodeid.partition("::")
    classname = path.removesuffix(".py").replace("/", ".")
    if "::" in name:
        cls, _, name = name.rpartition("::")
        classname = f"{classname}.{cls.replace('::', '.')}"
    case = ET.Element(
        "testcase", classname=classname, name=name or path, time=f"{test.duration_s:.3f}"
    )
    if test.file:
        case.set("file", test.file)
    if test.line is not None:
        case.set("line", str(test.line))
    detail = _clean(test.longrepr or test.message)
    message = _clean(test.message)
    if test.outcome is Outcome.FAILED:
        ET.SubElement(case, "failure", message=message, type="AssertionError").text = detail
    elif test.outcome in (Outcome.ERROR, Outcome.TIMEOUT, Outcome.CRASHED):
        kind = {"error": "error", "timeout": "Timeout", "crashed": "Crash"}[test.outcome.value]
        ET.SubElement(case, "error", message=message, type=kind).text = detail
    elif test.outcome is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=_clean(test.skip_reason or test.message))
    elif test.outcome is Outcome.BLOCKED:
        why = f"blocked: {test.blocked_by or 'environment unhealthy'} (not run)"
        ET.SubElement(case, "skipped", message=why, type="blocked")
    if test.reruns:
        reruns = ", ".join(o.value for o in test.reruns)
        ET.SubElement(case, "properties").append(
            ET.Element("property", name="reruns", value=reruns)
        )
    if test.stdout:
        ET.SubElement(case, "system-out").text = _clean(test.stdout)
    if test.stderr or test.log:
        ET.SubElement(case, "system-err").text = _clean(
            "\n".join(filter(None, [test.stderr, test.log]))
        )
    return case


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """XML 1.0 cannot hold most control characters (each becomes `?`); test output
    sometimes does."""
    return _NOT_XML.sub("?", text)
