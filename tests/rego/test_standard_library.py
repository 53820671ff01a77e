"""The standard Rego library (`rego/`): every test passes on both engines, and the tests cover it.

One differential run (regorus and real OPA, in parallel) feeds every assertion below; it is what
`governor test rego/ --differential --coverage --threshold 95` checks from the command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from governor.bundle import load_paths, standard_library_path
from governor.tester import DifferentialReport, Runner, Status

#: Tests in the library when this suite was written; the count may grow, never shrink.
MIN_TESTS = 260
MIN_COVERAGE = 95.0
ROOT = standard_library_path()


@pytest.fixture(scope="module")
def run() -> DifferentialReport:
    return Runner(coverage=True).run_differential(load_paths([ROOT]))


def test_every_test_passes_on_both_engines(run: DifferentialReport) -> None:
    for engine, report in run.reports.items():
        broken = [
            f"{r.location}: {r.full_name}: {r.status.value} {r.error or ''}".rstrip()
            for r in report.results
            if r.status is not Status.PASS
        ]
        assert broken == [], f"{engine}: {len(broken)} tests did not pass"


def test_the_engines_agree_on_every_test(run: DifferentialReport) -> None:
    assert [f"{d.location}: {d.test}: {d.reason}" for d in run.disagreements] == []


def test_the_library_keeps_its_tests(run: DifferentialReport) -> None:
    assert len(run.primary.results) >= MIN_TESTS


def test_every_policy_file_has_a_test_file_with_tests(run: DifferentialReport) -> None:
    tested_files = {Path(r.file) for r in run.primary.results}
    for policy in sorted(ROOT.rglob("*.rego")):
        if policy.name.endswith("_test.rego"):
            continue
        test_file = policy.with_name(policy.stem + "_test.rego")
        assert test_file in tested_files, f"{policy} has no tests in {test_file.name}"


def test_line_coverage_is_at_least_95_percent(run: DifferentialReport) -> None:
    coverage = run.primary.coverage
    assert coverage is not None
    uncovered = {
        path: f"{file.percentage:.1f}% (missing {list(file.not_covered)})"
        for path, file in coverage.files.items()
        if file.not_covered
    }
    assert coverage.percentage >= MIN_COVERAGE, f"{coverage.percentage:.2f}%: {uncovered}"
