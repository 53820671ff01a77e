"""governor_cli.reporters: the small formatting rules the `governor test` output relies on."""

from __future__ import annotations

import pytest
from governor_cli.reporters import go_duration, summary

from governor.tester import Report, Result, Status


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (950, "950ns"),
        (1_417, "1.417µs"),
        (68_875, "68.875µs"),
        (2_500_000, "2.5ms"),
        (1_234_567, "1.234567ms"),
        (5_000_000_000, "5s"),
        (63_500_000_000, "1m3.5s"),
    ],
)
def test_durations_are_printed_as_go_prints_them(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_summary_lists_only_the_statuses_that_occurred_in_opa_order() -> None:
    def result(status: Status) -> Result:
        return Result(package="data.p", name="test_x", location="p.rego:1", status=status)

    report = Report(
        engine="regorus",
        results=[result(Status.ERROR), result(Status.PASS), result(Status.PASS)],
    )
    assert summary(report) == ["PASS: 2/3", "ERROR: 1/3"]
    assert summary(Report(engine="regorus", results=[])) == ["no tests found"]
