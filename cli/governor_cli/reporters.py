"""Formats for `governor test`: pretty (like `opa test`), JSON (OPA's shape), JUnit XML, coverage.

Each function takes what `governor.tester` returned and gives text; nothing here runs a test.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from typing import Any

from rich.console import Console
from rich.table import Table

from governor.tester import Coverage, DifferentialReport, Report, Result, Status

RULE = "-" * 80


def go_duration(ns: int) -> str:
    """A duration as Go prints it (`opa test` does): `0s`, `950ns`, `1.417µs`, `2.5ms`, `1m3s`."""
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return _trim(ns / 1_000, 3) + "µs"
    if ns < 1_000_000_000:
        return _trim(ns / 1_000_000, 6) + "ms"
    seconds = ns / 1_000_000_000
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = _trim(seconds, 9) + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def _trim(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def pretty(report: Report, verbose: bool = False) -> str:
    """`opa test`'s pretty output: failing (or, verbose, all) tests, their prints, a summary."""
    lines: list[str] = []
    last_file: str | None = None
    for result in report.results:
        if verbose or result.status is not Status.PASS:
            if last_file is not None and last_file != result.file:
                lines.append("")
            lines.append(f"{result.file}:{result.row}:")
            last_file = result.file
            lines.append(_line(result))
            if result.output:
                lines.extend(["", *(f"  {out}" for out in result.output), ""])
        if result.error:
            lines.append(f"  {_error_text(result)}")
    if lines:
        lines.append(RULE)
    lines.extend(summary(report))
    return "\n".join(lines)


def summary(report: Report) -> list[str]:
    """`PASS: 3/4`, `FAIL: 1/4`, ... (only the statuses that occurred)."""
    counts, total = report.counts, len(report.results)
    if not total:
        return ["no tests found"]
    order = (Status.PASS, Status.FAIL, Status.SKIPPED, Status.ERROR)
    return [f"{s.value}: {counts[s]}/{total}" for s in order if counts[s]]


def _line(result: Result) -> str:
    if result.status is Status.SKIPPED:
        return f"{result.full_name}: SKIPPED"
    return f"{result.full_name}: {result.status.value} ({go_duration(result.duration_ns)})"


def _error_text(result: Result) -> str:
    parts = [p for p in (result.error_location, result.error_code) if p]
    return ": ".join([*parts, result.error or ""])


def disagreements(report: DifferentialReport) -> str:
    """The tests on which the engines disagree, one per line, with their locations."""
    engines = " vs ".join(report.reports)
    lines = ["", f"DISAGREEMENTS ({engines})", RULE]
    for item in report.disagreements:
        lines.append(f"{item.location}:")
        lines.append(f"{item.test}: {item.reason}")
    lines.append(RULE)
    count = len(report.disagreements)
    lines.append(f"DISAGREE: {count}/{len(report.primary.results)}")
    return "\n".join(lines)


def json_results(report: Report) -> list[dict[str, Any]]:
    """OPA's `--format=json`: `[{location, package, name, fail, skip, error, duration, output}]`.

    As in OPA, `output` (what the test printed) is base64, and `fail`/`skip`/`error`/`output` are
    left out when empty.
    """
    out = []
    for result in report.results:
        item: dict[str, Any] = {
            "location": {"file": result.file, "row": result.row, "col": result.col},
            "package": result.package,
            "name": result.name,
        }
        if result.status is Status.FAIL:
            item["fail"] = True
        if result.status is Status.SKIPPED:
            item["skip"] = True
        if result.status is Status.ERROR:
            item["error"] = {
                "code": result.error_code or "eval_error",
                "message": result.error or "",
                "location": _location_json(result.error_location),
            }
        item["duration"] = result.duration_ns
        if result.output:
            text = "".join(line + "\n" for line in result.output)
            item["output"] = base64.b64encode(text.encode()).decode()
        out.append(item)
    return out


def _location_json(location: str | None) -> dict[str, Any] | None:
    if not location:
        return None
    parts = location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return {"file": parts[0], "row": int(parts[1]), "col": int(parts[2])}
    parts = location.rsplit(":", 1)
    if len(parts) == 2 and parts[1].isdigit():
        return {"file": parts[0], "row": int(parts[1]), "col": 0}
    return {"file": location, "row": 0, "col": 0}


def junit(report: Report) -> str:
    """JUnit XML: one `testsuite` per package, one `testcase` per test, prints in `system-out`."""
    root = ET.Element("testsuites", name="governor test")
    suites: dict[str, ET.Element] = {}
    for result in report.results:
        suite = suites.get(result.package)
        if suite is None:
            suite = suites[result.package] = ET.SubElement(root, "testsuite", name=result.package)
        case = ET.SubElement(
            suite,
            "testcase",
            name=result.name,
            classname=result.package,
            file=result.file,
            line=str(result.row),
            time=f"{result.duration_ns / 1e9:.6f}",
        )
        if result.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", message=_failure_message(result), type="FAIL")
            failure.text = f"{result.location}: {result.full_name}: {_failure_message(result)}"
        elif result.status is Status.ERROR:
            error = ET.SubElement(
                case, "error", message=result.error or "", type=result.error_code or "eval_error"
            )
            error.text = _error_text(result)
        elif result.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", message="todo_test_ rule")
        if result.output:
            ET.SubElement(case, "system-out").text = "\n".join(result.output) + "\n"
    for element in [*suites.values(), root]:
        cases = element.iter("testcase")
        _totals(element, list(cases))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _totals(element: ET.Element, cases: list[ET.Element]) -> None:
    element.set("tests", str(len(cases)))
    for tag, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attribute, str(sum(1 for c in cases if c.find(tag) is not None)))
    element.set("time", f"{sum(float(c.get('time', '0')) for c in cases):.6f}")


def _failure_message(result: Result) -> str:
    if not result.defined:
        return "the test rule is undefined"
    shown = json.dumps(result.value, sort_keys=True)
    if len(shown) > 200:
        shown = shown[:197] + "..."
    return f"the test rule is {shown}, not true"


def coverage_table(coverage: Coverage, console: Console) -> None:
    """A per-file table (covered, not covered, %, missing lines) and the total."""
    table = Table(title="Coverage", title_justify="left", show_footer=True)
    longest = max((len(path) for path in coverage.files), default=10)
    table.add_column("File", footer="Total", no_wrap=True, min_width=longest)
    table.add_column("Covered", footer=str(coverage.covered_lines), justify="right")
    table.add_column("Not covered", footer=str(coverage.not_covered_lines), justify="right")
    table.add_column("%", footer=f"{coverage.percentage:.2f}", justify="right")
    table.add_column("Missing lines", overflow="fold")
    for path, file in coverage.files.items():
        table.add_row(
            path,
            str(len(file.covered)),
            str(len(file.not_covered)),
            f"{file.percentage:.2f}",
            _compact(file.not_covered),
        )
    console.print(table)


def _compact(lines: tuple[int, ...]) -> str:
    """`3, 5-7, 10`."""
    spans: list[list[int]] = []
    for line in lines:
        if spans and spans[-1][1] == line - 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
