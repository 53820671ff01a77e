"""`governor bench` and `bench/run.py`: they run and print the figures (never their values)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from governor_cli.main import app
from typer.testing import CliRunner

from governor.bundle import standard_library_modules

runner = CliRunner()

POLICY = """package governor.decision

default decision := "allow"

decision := "deny" if input.amount > 100
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "decision.rego").write_text(POLICY)
    return tmp_path / "policy"


def _bench(policy: Path, inputs: Path, *extra: str) -> list[str]:
    result = runner.invoke(
        app,
        ["bench", "-d", str(policy), "-i", str(inputs), "--count", "20", "--warmup", "2"]
        + [*extra, "--entrypoint", "governor.decision.decision"],
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_bench_prints_latency_throughput_and_compile_time(
    policy: Path, tmp_path: Path, engine: str
) -> None:
    if engine == "opa-lib":
        pytest.importorskip("opa_bindings")
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps([{"amount": 5}, {"amount": 500}]))
    lines = _bench(policy, inputs, "--engine", engine)
    text = "\n".join(lines)
    assert lines[0].startswith(f"engine      {engine}")
    assert "2 from" in text and "20 timed decisions" in text
    for figure in ("p50", "p90", "p99"):
        assert f"{figure} " in text and " µs" in text
    assert "decisions/s" in text
    assert any(line.startswith("compile ") and " ms" in line for line in lines)


def test_bench_reads_json_lines_and_a_single_input(policy: Path, tmp_path: Path) -> None:
    lines_file = tmp_path / "inputs.jsonl"
    lines_file.write_text('{"amount": 1}\n\n{"amount": 200}\n{"amount": 3}\n')
    assert any("3 from" in line for line in _bench(policy, lines_file))
    single = tmp_path / "one.json"
    single.write_text('{"amount": 1}')
    assert any("1 from" in line for line in _bench(policy, single))


def test_bench_json_format_has_every_figure(policy: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text('[{"amount": 1}]')
    figures = json.loads("\n".join(_bench(policy, inputs, "--format", "json")))
    for key in ("p50_us", "p90_us", "p99_us", "per_second", "compile_ms", "first_call_ms"):
        assert isinstance(figures[key], int | float)
    assert figures["count"] == 20 and figures["inputs"] == 1


def test_bench_exits_2_when_the_entrypoint_is_undefined(policy: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text('{"amount": 1}')
    result = runner.invoke(
        app, ["bench", "-d", str(policy), "-i", str(inputs), "--entrypoint", "nothing.here"]
    )
    assert result.exit_code == 2
    assert "data.nothing.here" in result.stderr


def test_bench_exits_2_on_bad_inputs(policy: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text("{not json")
    result = runner.invoke(app, ["bench", "-d", str(policy), "-i", str(inputs)])
    assert result.exit_code == 2
    assert "inputs.json: not valid JSON" in result.stderr


def _bench_script() -> ModuleType:
    """bench/run.py as a module (it is a script, not part of a package)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "run.py"
    spec = importlib.util.spec_from_file_location("governor_bench_run", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_script_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    if not standard_library_modules():
        pytest.skip("the standard library has no modules yet")
    run = _bench_script()
    assert run.main(["--count", "3", "--warmup", "0", "--inputs", "6"]) == 0
    out = capsys.readouterr().out
    assert "p50 µs" in out and "p99 µs" in out and "compile ms" in out
    assert "regorus evaluate" in out and "regorus decide()" in out


def test_bench_script_generates_the_documented_input_shape() -> None:
    inputs = _bench_script().generate_inputs(200)
    assert len(inputs) == 200
    assert {i["action"]["kind"] for i in inputs} == {"model", "tool"}
    assert any("@example.com" in i["raw_text"] for i in inputs)
    assert {"payments.transfer", "shell.exec"} <= {i["action"]["name"] for i in inputs}
    assert all(i["version"] == 1 and "rate_limit" in i["facts"] for i in inputs)
    chat = [i for i in inputs if i["action"]["kind"] == "model"]
    assert all(1900 <= len(i["raw_text"]) <= 2100 for i in chat)
