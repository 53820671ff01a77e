"""`governor check`: every problem with its location, strict checks, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from governor_cli.main import app
from typer.testing import CliRunner, Result

runner = CliRunner()


def governor(*args: str | Path) -> Result:
    return runner.invoke(app, ["check", *(str(a) for a in args)])


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_valid_modules_exit_0_and_are_counted(tmp_path: Path) -> None:
    write(
        tmp_path, {"a.rego": "package a\n\nallow if input.ok\n", "b.rego": "package b\n\nx := 1\n"}
    )
    result = governor(tmp_path)
    assert result.exit_code == 0
    assert result.stdout.startswith("2 modules OK (checked with regorus")


def test_each_files_syntax_error_is_reported_with_row_and_column(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "one.rego": "package one\n\nallow if {\n\tinput.x ==\n}\n",
            "two.rego": "package two\n\ndeny contains x if {\n",
            "fine.rego": "package fine\n\nx := 1\n",
        },
    )
    result = governor(tmp_path)
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'one.rego'}:5:1: ")
    assert lines[1].startswith(f"{tmp_path / 'two.rego'}:4:1: ")
    assert "2 problems in 3 modules" in result.stderr
    assert "Traceback" not in result.output


def test_compile_errors_from_both_engines_are_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "unsafe.rego": "package unsafe\n\nallow if {\n\tx == 1\n}\n",
            "typed.rego": "package typed\n\nc := count(1, 2)\n\nz if undefined_function(1)\n",
        },
    )
    result = governor(tmp_path)
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    # OPA's type checker stops at the type errors (row only: its errors carry no column)...
    assert lines[0] == f"{tmp_path / 'typed.rego'}:3: rego_type_error: count: arity mismatch"
    assert (
        lines[3]
        == f"{tmp_path / 'typed.rego'}:5: rego_type_error: undefined function undefined_function"
    )
    # ... regorus's static checks still find the unsafe variable, with a character column.
    assert lines[4] == f"{tmp_path / 'unsafe.rego'}:4:2: use of undefined variable `x` is unsafe"
    assert len(lines) == 5


def test_a_problem_both_engines_find_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path, {"unsafe.rego": "package unsafe\n\nallow if {\n\tx == 1\n}\n"})
    result = governor(tmp_path)
    assert result.exit_code == 2
    assert (
        result.stdout == f"{tmp_path / 'unsafe.rego'}:4: rego_unsafe_var_error: var x is unsafe\n"
    )


def test_strict_reports_unused_and_duplicate_imports_and_unused_assignments(
    tmp_path: Path,
) -> None:
    module = """\
package s

import data.lib
import data.other
import data.other as again

allow if {
	x := 1
	y := 2
	y > 0
	other.enabled
}
"""
    write(tmp_path, {"s.rego": module})
    assert governor(tmp_path).exit_code == 0  # not errors without --strict
    result = governor(tmp_path, "--strict")
    assert result.exit_code == 2
    where = tmp_path / "s.rego"
    assert result.stdout.splitlines() == [
        f"{where}:3:1: unused import: data.lib",
        f"{where}:5:1: duplicate import: data.other is already imported on line 4",
        f"{where}:5:1: unused import: data.other as again",
        f"{where}:8:2: unused assignment: x is assigned but never used",
    ]


def test_strict_accepts_a_clean_module(tmp_path: Path) -> None:
    module = """\
package clean

import data.roles

allowed contains user if {
	some user in input.users
	role := roles[user]
	role == "admin"
}

f(x) := y if {
	[y, _] := x
}
"""
    result = governor(write(tmp_path, {"clean.rego": module}), "-S")
    assert result.exit_code == 0, result.output
    assert result.stdout == "1 module OK (checked with regorus and opa)\n"


def test_a_missing_path_exits_2(tmp_path: Path) -> None:
    result = governor(tmp_path / "missing")
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_the_installed_entry_point_runs_check(tmp_path: Path) -> None:
    write(tmp_path, {"bad.rego": "package bad\n\nallow if {\n"})
    script = Path(sys.executable).parent / "governor"
    done = subprocess.run(
        [str(script), "check", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout.startswith(f"{tmp_path / 'bad.rego'}:")
    assert "Traceback" not in done.stderr
