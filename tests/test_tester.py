"""governor.tester: discovery, outcomes, prints, timeouts, coverage and differential runs.

Every fixture is a small real module written to tmp_path and run by real engines in real worker
processes; nothing of ours is mocked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from governor.bundle import load_paths
from governor.errors import ConfigurationError, PolicyCompileError
from governor.tester import Runner, Status, discover

POLICY = """\
package p

allow if {
	input.role == "admin"
}

deny contains "not admin" if {
	input.role != "admin"
}

double(x) := y if {
	y := x * 2
}
"""

TESTS = """\
package p_test

import data.p

test_admin_allowed if {
	p.allow with input as {"role": "admin"}
}

test_guest_denied if {
	print("checking guest")
	"not admin" in p.deny with input as {"role": "guest"}
}

test_guest_allowed_fails if {
	p.allow with input as {"role": "guest"}
}

test_value_not_true := 1

test_divides_by_zero if {
	1 / 0
}

todo_test_later if {
	1 / 0
}
"""

OTHER = """\
package q

unused(x) := x + 1
"""

#: A test that runs for minutes on either engine without allocating: 10^8 iterations, no output.
RUNAWAY = """\
package slow_test

test_runaway if {
	count([1 |
		some x in numbers.range(1, 10000)
		some y in numbers.range(1, 10000)
		x == y + 100000
	]) == 0
}

test_after_runaway if true
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return write(tmp_path, {"p.rego": POLICY, "p_test.rego": TESTS, "q.rego": OTHER})


def by_name(results: list) -> dict:
    return {r.name: r for r in results}


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_each_outcome_gets_the_status_opa_test_would_give(suite: Path, engine: str) -> None:
    report = Runner(engine=engine).run(load_paths([suite]))
    results = by_name(report.results)

    assert results["test_admin_allowed"].status is Status.PASS
    assert results["test_guest_denied"].status is Status.PASS
    assert results["test_guest_allowed_fails"].status is Status.FAIL  # undefined
    assert results["test_value_not_true"].status is Status.FAIL  # defined, but not true
    assert results["test_divides_by_zero"].status is Status.ERROR
    assert "divide by zero" in (results["test_divides_by_zero"].error or "")
    assert results["todo_test_later"].status is Status.SKIPPED  # never evaluated: no error
    assert not report.ok
    assert report.counts[Status.PASS] == 2 and report.counts[Status.FAIL] == 2


def test_results_carry_package_location_and_duration(suite: Path) -> None:
    results = by_name(Runner().run(load_paths([suite])).results)
    admin = results["test_admin_allowed"]
    assert admin.package == "data.p_test"
    assert admin.full_name == "data.p_test.test_admin_allowed"
    assert admin.location == f"{suite / 'p_test.rego'}:5"
    assert admin.duration_ns > 0
    assert results["todo_test_later"].duration_ns == 0


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_prints_are_captured_per_test_without_their_location(suite: Path, engine: str) -> None:
    results = by_name(Runner(engine=engine).run(load_paths([suite])).results)
    assert results["test_guest_denied"].output == ("checking guest",)
    assert results["test_admin_allowed"].output == ()


def test_run_filter_is_searched_in_the_full_name(suite: Path) -> None:
    bundle = load_paths([suite])
    assert [r.name for r in Runner(run="guest").run(bundle).results] == [
        "test_guest_denied",
        "test_guest_allowed_fails",
    ]
    assert [r.name for r in Runner(run=r"^data\.p_test\.test_admin").run(bundle).results] == [
        "test_admin_allowed"
    ]
    assert Runner(run="no-such-test").run(bundle).results == []


def test_bad_arguments_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="run"):
        Runner(run="([")
    with pytest.raises(ConfigurationError, match="engine"):
        Runner(engine="wasm")
    with pytest.raises(ConfigurationError, match="timeout"):
        Runner(timeout=0)


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_a_runaway_test_times_out_and_the_next_tests_still_run(tmp_path: Path, engine: str) -> None:
    bundle = load_paths([write(tmp_path, {"slow_test.rego": RUNAWAY})])
    results = by_name(Runner(engine=engine, timeout=0.5).run(bundle).results)
    assert results["test_runaway"].status is Status.ERROR
    assert results["test_runaway"].error_code == "timeout"
    assert "timed out after 0.5s" in (results["test_runaway"].error or "")
    assert results["test_after_runaway"].status is Status.PASS


def test_discovery_handles_every_kind_of_test_rule(tmp_path: Path) -> None:
    module = """\
package kinds_test

test_plain if true

test_value := true

a.b.test_nested if true

test_cases[name] if {
	some name in ["one", "two"]
}

test_set contains 1 if true

test_twice if true

test_twice if false

todo_test_skipped if true

not_a_test if true

test_function(x) := x
"""
    bundle = load_paths([write(tmp_path, {"kinds_test.rego": module})])
    tests, modules = discover(bundle)
    assert [(t.name, t.row, t.skip, t.parameterised) for t in tests] == [
        ("test_plain", 3, False, False),
        ("test_value", 5, False, False),
        ("a.b.test_nested", 7, False, False),
        ("test_cases", 9, False, True),
        ("test_set", 13, False, False),
        ("test_twice", 15, False, False),
        ("test_twice#01", 17, False, False),
        ("todo_test_skipped", 19, True, False),
    ]
    # The second definition is renamed in the compiled source, so each runs on its own.
    assert "test_twice__governor_01 if false" in modules[str(tmp_path / "kinds_test.rego")]


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_every_kind_of_test_rule_runs_on_both_engines(tmp_path: Path, engine: str) -> None:
    module = """\
package kinds_test

a.b.test_nested if true

test_cases[name] if {
	some name in ["one", "two"]
}

test_set contains 1 if true

test_twice if true

test_twice if false

test_input_is_undefined if not input

test_data_is_loaded if data.limits.max == 3
"""
    write(tmp_path, {"kinds_test.rego": module, "limits/data.json": '{"max": 3}'})
    results = by_name(Runner(engine=engine).run(load_paths([tmp_path])).results)
    assert {name: r.status.value for name, r in results.items()} == {
        "a.b.test_nested": "PASS",
        "test_cases": "PASS",  # every case is true
        "test_set": "FAIL",  # a set is not true (as in OPA)
        "test_twice": "PASS",
        "test_twice#01": "FAIL",  # each definition on its own
        "test_input_is_undefined": "PASS",  # tests run without input, as in opa test
        "test_data_is_loaded": "PASS",
    }


def test_a_module_that_does_not_parse_raises_with_its_location(tmp_path: Path) -> None:
    bundle = load_paths([write(tmp_path, {"broken_test.rego": "package b\n\ntest_x if {\n"})])
    with pytest.raises(PolicyCompileError) as caught:
        Runner().run(bundle)
    assert caught.value.location is not None
    assert caught.value.location.startswith(str(tmp_path / "broken_test.rego") + ":")


@pytest.mark.parametrize("engine", ["regorus", "opa-lib"])
def test_a_module_that_does_not_compile_raises_before_any_test_runs(
    tmp_path: Path, engine: str
) -> None:
    module = "package u_test\n\nallow if {\n\tx == 1\n}\n\ntest_x if true\n"
    bundle = load_paths([write(tmp_path, {"u_test.rego": module})])
    with pytest.raises(PolicyCompileError) as caught:
        Runner(engine=engine).run(bundle)
    assert f"{tmp_path / 'u_test.rego'}:4" in str(caught.value)


def test_regorus_coverage_reports_non_test_files_only(suite: Path) -> None:
    coverage = Runner(coverage=True).run(load_paths([suite])).coverage
    assert coverage is not None
    assert sorted(coverage.files) == [str(suite / "p.rego"), str(suite / "q.rego")]
    policy = coverage.files[str(suite / "p.rego")]
    # regorus marks expression lines: allow's and deny's bodies ran, double() never did.
    assert {4, 8}.issubset(policy.covered)
    assert {11, 12}.issubset(policy.not_covered)
    untouched = coverage.files[str(suite / "q.rego")]
    assert untouched.covered == () and untouched.not_covered == (3,)
    total = coverage.covered_lines + coverage.not_covered_lines
    assert coverage.percentage == pytest.approx(100 * coverage.covered_lines / total)


def test_opa_coverage_also_counts_rule_heads(suite: Path) -> None:
    coverage = Runner(engine="opa-lib", coverage=True).run(load_paths([suite])).coverage
    assert coverage is not None
    policy = coverage.files[str(suite / "p.rego")]
    assert {3, 4}.issubset(policy.covered)
    assert {11, 12}.issubset(policy.not_covered)
    assert 0 < policy.percentage < 100


def test_coverage_json_uses_opas_row_ranges(suite: Path) -> None:
    coverage = Runner(coverage=True).run(load_paths([suite])).coverage
    assert coverage is not None
    report = coverage.to_json()
    entry = report["files"][str(suite / "q.rego")]
    assert entry["not_covered"] == [{"start": {"row": 3}, "end": {"row": 3}}]
    assert entry["coverage"] == 0.0
    assert report["covered_lines"] == coverage.covered_lines


def test_differential_run_finds_the_decimal_divergence(tmp_path: Path) -> None:
    module = """\
package diverge_test

test_decimal_sum if {
	0.1 + 0.2 == 0.3
}

sum_value := 0.1 + 0.2

test_same_status_other_value := sum_value

test_agrees if {
	upper("abc") == "ABC"
}
"""
    bundle = load_paths([write(tmp_path, {"diverge_test.rego": module})])
    report = Runner().run_differential(bundle)
    found = {d.test.rsplit(".", 1)[1]: d for d in report.disagreements}
    assert sorted(found) == ["test_decimal_sum", "test_same_status_other_value"]
    assert found["test_decimal_sum"].reason == "regorus FAIL, opa-lib PASS"
    assert "values differ" in found["test_same_status_other_value"].reason
    assert "0.30000000000000004" in found["test_same_status_other_value"].reason
    assert list(report.reports) == ["regorus", "opa-lib"]
    assert not report.ok


def test_differential_run_of_a_clean_suite_agrees(suite: Path) -> None:
    report = Runner(run="admin|guest_denied").run_differential(load_paths([suite]))
    assert report.disagreements == []
    assert report.ok


def test_a_run_stopped_by_a_compile_error_leaves_no_stale_worker_behind(
    suite: Path, tmp_path: Path
) -> None:
    # OPA's type checker rejects this; regorus compiles lazily and accepts it. With opa-lib
    # first, the run stops while the regorus worker's answer is still unread: that worker must
    # not be reused, or the next run would read the stale answer as a test result.
    odd = write(tmp_path / "odd", {"odd.rego": "package odd\n\nc := count(1, 2)\n"})
    with pytest.raises(PolicyCompileError, match="arity mismatch"):
        Runner(engine="opa-lib").run_differential(load_paths([odd]))
    results = by_name(Runner(run="admin").run(load_paths([suite])).results)
    assert results["test_admin_allowed"].status is Status.PASS
