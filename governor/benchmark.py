"""Measure decision latency: what `governor bench` and `make bench` print.

Method (as in shared/research/rego-engines.md §4): inputs are cycled; each sample times one full
call (for an engine, conversion of the Python input, the evaluation and conversion of the result
back to Python) with `time.perf_counter_ns`; warm-up calls run first and are not recorded.
Compile time is how long building the engine took; the first evaluation is reported apart,
because engines finish compiling lazily (regorus plans rules on first use, OPA prepares the
query). Figures are indicative: they depend on the machine and vary between runs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governor.errors import ConfigurationError

__all__ = ["Measurement", "load_inputs", "measure", "percentile"]


def percentile(sorted_samples: Sequence[int], q: float) -> float:
    """The `q`-th percentile (0..100) of already sorted samples, nearest-rank."""
    if not sorted_samples:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100 * len(sorted_samples)))
    return float(sorted_samples[min(rank, len(sorted_samples)) - 1])


@dataclass(frozen=True)
class Measurement:
    """Latency samples (ns) of `count` calls, plus the one-off costs measured before them."""

    label: str
    samples_ns: tuple[int, ...]
    total_seconds: float
    compile_seconds: float | None = None
    first_call_seconds: float | None = None

    @property
    def count(self) -> int:
        """How many calls were timed."""
        return len(self.samples_ns)

    def percentile_us(self, q: float) -> float:
        """The `q`-th percentile latency, in microseconds."""
        return percentile(sorted(self.samples_ns), q) / 1000

    @property
    def p50_us(self) -> float:
        """Median latency per call, µs."""
        return self.percentile_us(50)

    @property
    def p90_us(self) -> float:
        """90th percentile latency per call, µs."""
        return self.percentile_us(90)

    @property
    def p99_us(self) -> float:
        """99th percentile latency per call, µs."""
        return self.percentile_us(99)

    @property
    def mean_us(self) -> float:
        """Mean latency per call, µs."""
        return sum(self.samples_ns) / len(self.samples_ns) / 1000

    @property
    def per_second(self) -> float:
        """Calls per second over the timed loop (one thread)."""
        return self.count / self.total_seconds if self.total_seconds > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values (µs, seconds, calls/s)."""
        return {
            "label": self.label,
            "count": self.count,
            "p50_us": round(self.p50_us, 1),
            "p90_us": round(self.p90_us, 1),
            "p99_us": round(self.p99_us, 1),
            "mean_us": round(self.mean_us, 1),
            "per_second": round(self.per_second, 1),
            "compile_ms": _ms(self.compile_seconds),
            "first_call_ms": _ms(self.first_call_seconds),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def measure(
    call: Callable[[Any], Any],
    inputs: Sequence[Any],
    *,
    count: int,
    warmup: int = 100,
    label: str = "",
    compile_seconds: float | None = None,
) -> Measurement:
    """Time `count` calls of `call(input)`, cycling through `inputs`, after `warmup` calls.

    The first call is timed on its own (as `first_call_seconds`) before the warm-up. Exceptions
    from `call` propagate: a benchmark of failing calls would measure nothing useful.
    """
    if count < 1:
        raise ConfigurationError(f"count must be at least 1, got {count}")
    if not inputs:
        raise ConfigurationError("no inputs to benchmark")
    start = time.perf_counter()
    call(inputs[0])
    first = time.perf_counter() - start
    for i in range(warmup):
        call(inputs[i % len(inputs)])
    samples: list[int] = []
    clock = time.perf_counter_ns
    loop_start = time.perf_counter()
    for i in range(count):
        item = inputs[i % len(inputs)]
        t0 = clock()
        call(item)
        samples.append(clock() - t0)
    total = time.perf_counter() - loop_start
    return Measurement(
        label=label,
        samples_ns=tuple(samples),
        total_seconds=total,
        compile_seconds=compile_seconds,
        first_call_seconds=first,
    )


def load_inputs(path: str | Path) -> list[Any]:
    """Read benchmark inputs: a JSON document (one input, or an array of inputs) or JSON Lines.

    A top-level JSON array is a list of inputs. `.jsonl`/`.ndjson` files, and files holding more
    than one JSON document, are read one input per non-empty line. Raises `ConfigurationError`
    naming the file (and line) on bad JSON.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read inputs: {exc}") from None
    if file.suffix not in (".jsonl", ".ndjson"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise ConfigurationError(f"{file}: not valid JSON: {exc}") from None
        else:
            inputs = document if isinstance(document, list) else [document]
            if not inputs:
                raise ConfigurationError(f"{file}: the array of inputs is empty")
            return inputs
    inputs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                inputs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"{file}:{number}: not valid JSON: {exc}") from None
    if not inputs:
        raise ConfigurationError(f"{file}: holds no inputs")
    return inputs
