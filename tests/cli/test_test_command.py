"""`governor test`: output formats, coverage, exit codes, and errors without tracebacks."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from governor_cli.main import app
from typer.testing import CliRunner, Result

runner = CliRunner()

POLICY = """\
package p

allow if {
	input.role == "admin"
}

limit(x) := 10 if {
	x == "small"
}
"""

PASSING = """\
package p_test

import data.p

test_admin if {
	print("role is", "admin")
	p.allow with input as {"role": "admin"}
}

test_guest if {
	not p.allow with input as {"role": "guest"}
}

todo_test_limits if false
"""

FAILING = """\
package p_test

import data.p

test_admin if {
	p.allow with input as {"role": "admin"}
}

test_guest_is_admin if {
	print("about to fail")
	p.allow with input as {"role": "guest"}
}

test_divides if {
	1 / 0
}
"""


def governor(*args: str | Path) -> Result:
    return runner.invoke(app, ["test", *(str(a) for a in args)])


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def passing(tmp_path: Path) -> Path:
    return write(tmp_path, {"p.rego": POLICY, "p_test.rego": PASSING})


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    return write(tmp_path, {"p.rego": POLICY, "p_test.rego": FAILING})


def test_all_passing_exits_0_with_opa_summary(passing: Path) -> None:
    result = governor(passing)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["PASS: 2/3", "SKIPPED: 1/3"]
    # Only what did not pass is listed: the skipped test, with its location.
    assert f"{passing / 'p_test.rego'}:14:" in lines
    assert "data.p_test.todo_test_limits: SKIPPED" in lines
    assert "data.p_test.test_admin" not in result.stdout


def test_failures_are_listed_with_location_and_exit_1(failing: Path) -> None:
    result = governor(failing)
    assert result.exit_code == 1
    out = result.stdout
    assert f"{failing / 'p_test.rego'}:9:\ndata.p_test.test_guest_is_admin: FAIL (" in out
    assert "\n  about to fail\n" in out  # a failing test's prints help debug it
    assert "data.p_test.test_divides: ERROR (" in out
    assert f"  {failing / 'p_test.rego'}:15:" in out and "divide by zero" in out
    assert out.splitlines()[-3:] == ["PASS: 1/3", "FAIL: 1/3", "ERROR: 1/3"]


def test_verbose_lists_every_test_with_duration_and_prints(passing: Path) -> None:
    result = governor(passing, "-v")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    admin = next(i for i, line in enumerate(lines) if line.startswith("data.p_test.test_admin:"))
    assert lines[admin].startswith("data.p_test.test_admin: PASS (")
    assert lines[admin].endswith("s)")  # a Go-style duration: 12.3µs, 1.2ms
    assert lines[admin + 1 : admin + 4] == ["", "  role is admin", ""]
    assert any(line.startswith("data.p_test.test_guest: PASS (") for line in lines)


def test_run_selects_tests_by_regex(failing: Path) -> None:
    result = governor(failing, "--run", "test_admin$")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "PASS: 1/1"


def test_json_format_follows_opa(failing: Path) -> None:
    result = governor(failing, "--format", "json")
    assert result.exit_code == 1
    items = {item["name"]: item for item in json.loads(result.stdout)}
    admin, guest, divides = items["test_admin"], items["test_guest_is_admin"], items["test_divides"]
    assert admin["package"] == "data.p_test"
    assert admin["location"] == {"file": str(failing / "p_test.rego"), "row": 5, "col": 1}
    assert "fail" not in admin and "error" not in admin and admin["duration"] > 0
    assert guest["fail"] is True
    assert base64.b64decode(guest["output"]).decode() == "about to fail\n"
    assert divides["error"]["code"] == "eval_error"
    assert "divide by zero" in divides["error"]["message"]
    assert divides["error"]["location"]["row"] == 15


def test_junit_format_parses_and_counts(failing: Path) -> None:
    result = governor(failing, "-f", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "data.p_test"
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert cases["test_admin"].find("failure") is None
    assert float(cases["test_admin"].get("time", "-1")) >= 0
    failure = cases["test_guest_is_admin"].find("failure")
    assert failure is not None and "undefined" in (failure.get("message") or "")
    assert cases["test_guest_is_admin"].findtext("system-out") == "about to fail\n"
    error = cases["test_divides"].find("error")
    assert error is not None and "divide by zero" in (error.get("message") or "")


def test_junit_marks_skipped_tests(passing: Path) -> None:
    root = ET.fromstring(governor(passing, "-f", "junit").stdout)
    assert root.get("skipped") == "1"
    skipped = root.find(".//testcase[@name='todo_test_limits']")
    assert skipped is not None and skipped.find("skipped") is not None


def test_coverage_table_lists_policy_files_only(passing: Path) -> None:
    result = governor(passing, "--coverage")
    assert result.exit_code == 0
    assert "p.rego" in result.stdout
    assert "p_test.rego" not in result.stdout.split("Coverage", 1)[1]
    table = result.stdout.split("Coverage", 1)[1]
    assert "Total" in table
    assert "33.33" in table  # allow's body is covered; limit()'s head value and body are not
    assert "7-8" in table


def test_coverage_json_is_the_report_with_totals(passing: Path) -> None:
    result = governor(passing, "--coverage", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert list(report["files"]) == [str(passing / "p.rego")]
    assert 0 < report["coverage"] < 100
    assert report["covered_lines"] + report["not_covered_lines"] > 0


def test_threshold_fails_below_and_passes_at_or_above(passing: Path) -> None:
    below = governor(passing, "--threshold", "100")
    assert below.exit_code == 1
    assert "Code coverage threshold not met: got" in below.stderr
    assert "instead of 100.00" in below.stderr
    assert governor(passing, "--threshold", "10").exit_code == 0


def test_a_runaway_test_is_an_error_after_the_timeout(tmp_path: Path) -> None:
    slow = """\
package slow_test

test_runaway if {
	count([1 |
		some x in numbers.range(1, 10000)
		some y in numbers.range(1, 10000)
		x == y + 100000
	]) == 0
}
"""
    result = governor(write(tmp_path, {"slow_test.rego": slow}), "--timeout", "0.5")
    assert result.exit_code == 1
    assert "data.slow_test.test_runaway: ERROR (500ms)" in result.stdout
    assert "timeout: timed out after 0.5s" in result.stdout


def test_differential_reports_a_disagreement_and_exits_1(tmp_path: Path) -> None:
    module = "package d_test\n\ntest_decimal if {\n\t0.1 + 0.2 == 0.3\n}\n\ntest_ok if true\n"
    result = governor(write(tmp_path, {"d_test.rego": module}), "--differential")
    assert result.exit_code == 1
    assert "DISAGREEMENTS (regorus vs opa-lib)" in result.stdout
    assert "data.d_test.test_decimal: regorus FAIL, opa-lib PASS" in result.stdout
    assert "DISAGREE: 1/2" in result.stdout


def test_differential_on_agreeing_engines_exits_0(passing: Path) -> None:
    result = governor(passing, "--differential", "--engine", "opa-lib")
    assert result.exit_code == 0, result.output
    assert "DISAGREE" not in result.stdout


def test_compile_errors_exit_2_with_locations_and_no_traceback(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"a.rego": "package a\n\nallow if {\n\tx == 1\n}\n", "b.rego": "package b\n\nz if {\n"},
    )
    result = governor(tmp_path)
    assert result.exit_code == 2
    assert f"{tmp_path / 'b.rego'}:" in result.stderr
    assert "the policies do not compile" in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_path_exits_2(tmp_path: Path) -> None:
    result = governor(tmp_path / "nope")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope'}: no such file or directory\n"


def test_bad_arguments_exit_2(passing: Path) -> None:
    bad_regex = governor(passing, "--run", "([")
    assert bad_regex.exit_code == 2
    assert "not a valid regular expression" in bad_regex.stderr
    assert governor(passing, "--format", "yaml").exit_code == 2
    assert governor(passing, "--timeout", "0").exit_code == 2
