"""`governor eval`: OPA's result shapes, undefined, input errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from governor_cli.main import app
from typer.testing import CliRunner, Result

runner = CliRunner()

POLICY = """\
package p

default decision := "deny"

decision := "allow" if input.role == "admin"

roles := {"admin", "dev"}

deny contains msg if {
	input.role == "guest"
	msg := "guests may not act"
}
"""


def governor(*args: str | Path) -> Result:
    return runner.invoke(app, ["eval", *(str(a) for a in args)])


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "p.rego").write_text(POLICY, encoding="utf-8")
    (tmp_path / "admin.json").write_text('{"role": "admin"}', encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_json_output_is_opas_result_set(policy: Path, engine: str) -> None:
    result = governor(
        "-d", policy / "policy", "-i", policy / "admin.json", "--engine", engine, "data.p.decision"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "result": [
            {
                "expressions": [
                    {"value": "allow", "text": "data.p.decision", "location": {"row": 1, "col": 1}}
                ]
            }
        ]
    }


def test_sets_come_out_as_arrays_and_bindings_are_reported(policy: Path) -> None:
    result = governor("-d", policy / "policy", "some r in data.p.roles; r == r")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)["result"]
    assert sorted(row["bindings"]["r"] for row in rows) == ["admin", "dev"]
    whole = json.loads(governor("-d", policy / "policy", "data.p.roles").stdout)
    assert whole["result"][0]["expressions"][0]["value"] == ["admin", "dev"]


def test_pretty_prints_the_value(policy: Path) -> None:
    result = governor("-d", policy / "policy", "--format", "pretty", "data.p")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"decision": "deny", "deny": [], "roles": ["admin", "dev"]}


def test_undefined_prints_empty_json_or_the_word_and_exits_0(policy: Path) -> None:
    as_json = governor("-d", policy / "policy", "data.p.nothing")
    assert (as_json.exit_code, json.loads(as_json.stdout)) == (0, {})
    pretty = governor("-d", policy / "policy", "-f", "pretty", "data.p.nothing")
    assert (pretty.exit_code, pretty.stdout) == (0, "undefined\n")


def test_fail_and_fail_defined_turn_results_into_exit_1(policy: Path) -> None:
    d = ("-d", policy / "policy")
    assert governor(*d, "--fail", "data.p.nothing").exit_code == 1
    assert governor(*d, "--fail", "data.p.decision").exit_code == 0
    assert governor(*d, "--fail-defined", "data.p.decision").exit_code == 1
    assert governor(*d, "--fail-defined", "data.p.nothing").exit_code == 0


def test_a_false_single_expression_is_reported_as_false(policy: Path) -> None:
    result = governor("-d", policy / "policy", '"guest" in data.p.roles')
    value = json.loads(result.stdout)["result"][0]["expressions"][0]["value"]
    assert (result.exit_code, value) == (0, False)


def test_yaml_input_is_accepted(policy: Path) -> None:
    (policy / "guest.yaml").write_text("role: guest\n", encoding="utf-8")
    result = governor("-d", policy / "policy", "-i", policy / "guest.yaml", "data.p.deny")
    value = json.loads(result.stdout)["result"][0]["expressions"][0]["value"]
    assert value == ["guests may not act"]


def test_a_missing_input_file_is_named_and_exits_2(policy: Path) -> None:
    result = governor("-d", policy / "policy", "-i", policy / "nope.json", "data.p")
    assert result.exit_code == 2
    assert result.stderr == f"error: {policy / 'nope.json'}: no such file\n"


def test_invalid_json_input_names_the_file_and_the_problem(policy: Path) -> None:
    (policy / "broken.json").write_text('{"role": "admin",\n}', encoding="utf-8")
    result = governor("-d", policy / "policy", "-i", policy / "broken.json", "data.p")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {policy / 'broken.json'}: invalid JSON: ")
    assert "(line 2, column 1)" in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_data_path_exits_2(policy: Path) -> None:
    result = governor("-d", policy / "absent", "data.p")
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_a_query_that_does_not_parse_exits_2(policy: Path) -> None:
    result = governor("-d", policy / "policy", "data.p.decision ==")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the query does not parse: <query>:1:")


def test_policies_that_do_not_compile_exit_2_with_locations(tmp_path: Path) -> None:
    (tmp_path / "bad.rego").write_text("package bad\n\nallow if {\n\tx == 1\n}\n")
    result = governor("-d", tmp_path, "data.bad.allow")
    assert result.exit_code == 2
    # Both engines find it; OPA's report of the line is kept (its compile errors carry no column).
    assert f"{tmp_path / 'bad.rego'}:4: rego_unsafe_var_error: var x is unsafe" in result.stderr


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_an_evaluation_error_exits_2_with_the_message(engine: str) -> None:
    result = governor("--engine", engine, "x := 1 / 0")
    assert result.exit_code == 2
    assert "divide by zero" in result.stderr


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_several_expressions_report_each_and_drop_false_solutions(engine: str) -> None:
    result = governor("--engine", engine, "x := [1, 2, 3][_]\nx > 1\nx * 10")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["result"]
    assert [row["bindings"] for row in rows] == [{"x": 2}, {"x": 3}]
    assert rows[0]["expressions"] == [
        {"value": True, "text": "x := [1, 2, 3][_]", "location": {"row": 1, "col": 1}},
        {"value": True, "text": "x > 1", "location": {"row": 2, "col": 1}},
        {"value": 20, "text": "x * 10", "location": {"row": 3, "col": 1}},
    ]
