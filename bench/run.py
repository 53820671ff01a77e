"""`make bench`: decision latency of the standard library on the embedded engines.

Builds the development bundle (`bundles/development`, data and manifest) with the standard library
into a reproducible archive, loads it back as OPA would, generates 200 realistic inputs (chat
texts of ~2 KB, some with e-mail addresses, SSNs or card numbers; tool calls such as
`payments.transfer` and `shell.exec`; rate-limit, budget, approval and validator facts) and times
`data.governor.decision` on regorus and opa-lib, then the same through `governor.decision.decide`.

    .venv/bin/python bench/run.py [--count 2000] [--warmup 200] [--inputs 200] [--json]
                                  [--save-inputs inputs.json]

Figures depend on the machine and vary ±20 % between runs (see shared/research/rego-engines.md §4);
nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("RUST_BACKTRACE", "0")

REPO = Path(__file__).resolve().parent.parent
DEVELOPMENT = REPO / "bundles" / "development"
ENTRYPOINT = "governor.decision"
NOW_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, fixed so runs are comparable

PROSE = (
    "the agent summarises quarterly revenue for the finance team and drafts a reply to the "
    "customer about the delayed shipment while checking the refund policy and the order history "
    "of the account before escalating the ticket to a human reviewer if anything looks unusual"
)
WORDS = tuple(PROSE.split(" "))
TOOLS = (
    ("payments.transfer", ("finance", "money")),
    ("payments.refund", ("finance", "money")),
    ("shell.exec", ("system",)),
    ("files.read", ("storage",)),
    ("search.web", ("read",)),
    ("email.send", ("comms",)),
)
ROLES: tuple[list[str], ...] = (["agent"], ["agent", "finance"], ["admin"], [])


def _text(rng: random.Random, size: int = 2048) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def _with_pii(rng: random.Random, text: str, kind: str) -> str:
    values = {
        "email": f"jane.doe{rng.randint(1, 99)}@example.com",
        "ssn": f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        "card": "4111 1111 1111 1111",
    }
    at = rng.randint(0, len(text) - 1)
    at = text.rfind(" ", 0, at) + 1
    return f"{text[:at]}{values[kind]} {text[at:]}"


def _policies(kind: str) -> list[dict[str, Any]]:
    policies: list[dict[str, Any]] = [
        {
            "type": "precheck",
            "name": "precheck",
            "params": {
                "tools": {
                    "deny": ["shell.*"],
                    "confirm": ["payments.*"],
                    "default": "allow",
                },
                "pii": {
                    "actions": {"email": "redact", "us_ssn": "deny", "credit_card": "redact"},
                    "default_action": "allow",
                },
            },
        },
        {"type": "rate_limit", "name": "api_calls", "params": {"max_calls": 100}},
        {"type": "budget", "name": "monthly", "params": {"warn_ratio_percent": 80}},
        {"type": "audit", "name": "audit", "params": {"compliance_tags": ["SOC2"]}},
    ]
    if kind == "tool":
        policies += [
            {
                "type": "authorization",
                "name": "tool_access",
                "params": {"required_roles": ["agent", "admin"]},
            },
            {
                "type": "approval",
                "name": "large_transfers",
                "params": {
                    "approvers": ["cfo@example.com"],
                    "when": [{"attribute": "args.amount", "op": "gt", "value": 10000}],
                },
            },
            {
                "type": "validation",
                "name": "arguments",
                "params": {
                    "input_schema": {
                        "type": "object",
                        "properties": {"amount": {"type": "integer", "minimum": 0}},
                    }
                },
            },
        ]
    return policies


def generate_inputs(count: int = 200, seed: int = 7) -> list[dict[str, Any]]:
    """`count` decision inputs (rego/README.md, version 1): half chat turns, half tool calls."""
    rng = random.Random(seed)
    inputs: list[dict[str, Any]] = []
    for i in range(count):
        roles = ROLES[i % len(ROLES)]
        subject = {
            "org_id": "org-1",
            "user_id": f"user-{i % 17}",
            "roles": roles,
            "permissions": [],
            "attributes": {"department": "support"},
        }
        facts: dict[str, Any] = {
            "now": NOW_NS,
            "rate_limit": {"api_calls": {"count": rng.randint(0, 110), "window_seconds": 60}},
            "budget": {
                "limit": 50_000_000,
                "spent": rng.randint(0, 52_000_000),
                "reserved": rng.randint(0, 1_000_000),
                "estimated_cost": rng.randint(1_000, 200_000),
                "currency": "USD",
            },
        }
        if i % 2 == 0:
            text = _text(rng)
            pii = rng.random()
            if pii < 0.25:
                text = _with_pii(rng, text, "email")
            elif pii < 0.32:
                text = _with_pii(rng, text, "ssn")
            elif pii < 0.40:
                text = _with_pii(rng, text, "card")
            action = {"kind": "model", "name": "openai.chat", "scope": "chat", "tags": []}
            args: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
            kind = "model"
        else:
            tool, tags = TOOLS[(i // 2) % len(TOOLS)]
            amount = rng.choice((50, 900, 12_500, 250_000))
            args = {"amount": amount, "to": "acct-123"} if tool.startswith("payments") else {}
            if tool == "shell.exec":
                args = {"command": "ls -la /tmp"}
            text = _text(rng, 300)
            action = {"kind": "tool", "name": tool, "scope": "tools", "tags": list(tags)}
            facts["checks"] = {"arguments": {"ok": True, "errors": []}}
            if i % 3 == 0:
                facts["approval"] = {"large_transfers": {"status": "approved", "approver": "cfo"}}
            kind = "tool"
        inputs.append(
            {
                "version": 1,
                "phase": "pre",
                "action": action,
                "subject": subject,
                "args": args,
                "raw_text": text,
                "payload": {},
                "policies": _policies(kind),
                "facts": facts,
            }
        )
    return inputs


def _fail(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    """Build, generate, measure and print the table; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="timed decisions per row")
    parser.add_argument("--warmup", type=int, default=200, help="untimed decisions first")
    parser.add_argument("--inputs", type=int, default=200, help="distinct inputs, cycled")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--save-inputs", metavar="FILE", help="also write the inputs (for governor bench -i FILE)"
    )
    options = parser.parse_args(argv)

    for entry in (str(REPO / "cli"), str(REPO)):  # runnable without `pip install -e .`
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from governor.benchmark import Measurement, measure
    from governor.bundle import build_archive, load_bundle_bytes, standard_library_modules
    from governor.engine import create_engine
    from governor.errors import GovernanceError

    if not standard_library_modules():
        _fail("the standard library (rego/governor/*.rego) is missing; nothing to benchmark")
    sources = [DEVELOPMENT] if DEVELOPMENT.is_dir() else []
    if not sources:
        print(
            f"bench: {DEVELOPMENT} not found; benchmarking the standard library without bundle "
            "data",
            file=sys.stderr,
        )
    try:
        built = build_archive(sources, include_stdlib=True)
        bundle = load_bundle_bytes(built.archive, source="development.tar.gz")
    except GovernanceError as exc:
        _fail(f"cannot build the development bundle: {exc}")
    inputs = generate_inputs(options.inputs)
    if options.save_inputs:
        Path(options.save_inputs).write_text(json.dumps(inputs), encoding="utf-8")
    rows: list[Measurement] = []
    results: dict[str, list[Any]] = {}

    try:
        from governor.decision import decide
    except ImportError:  # pragma: no cover - until governor/decision.py lands
        decide = None  # type: ignore[assignment]

    for name in ("regorus", "opa-lib"):
        try:
            start = time.perf_counter()
            engine = create_engine(name, bundle=bundle)
            compile_seconds = time.perf_counter() - start
        except GovernanceError as exc:
            print(f"bench: skipping {name}: {exc}", file=sys.stderr)
            continue
        try:
            evaluate: Callable[[Any], Any] = partial(engine.evaluate, ENTRYPOINT)
            results[name] = [evaluate(item) for item in inputs]
            rows.append(
                measure(
                    evaluate,
                    inputs,
                    count=options.count,
                    warmup=options.warmup,
                    label=f"{name} evaluate",
                    compile_seconds=compile_seconds,
                )
            )
            if decide is not None:
                rows.append(
                    measure(
                        partial(decide, engine),
                        inputs,
                        count=options.count,
                        warmup=options.warmup,
                        label=f"{name} decide()",
                    )
                )
        except GovernanceError as exc:
            _fail(f"{name} failed on data.{ENTRYPOINT}: {exc}")
        finally:
            engine.close()

    outcomes = {name: Counter(r["decision"] for r in docs) for name, docs in results.items()}
    disagree = 0
    if len(results) == 2:
        disagree = sum(a != b for a, b in zip(results["regorus"], results["opa-lib"], strict=True))
    if options.json:
        figures = {"rows": [r.as_dict() for r in rows], "outcomes": outcomes, "disagree": disagree}
        print(json.dumps(figures, indent=2))
        return 0
    print(
        f"bundle: {len(bundle.modules)} modules, {built.size} bytes, "
        f"revision {bundle.revision or '(none)'}; {len(inputs)} inputs cycled, "
        f"{options.count} timed decisions per row after {options.warmup} warm-up"
    )
    for name, counts in outcomes.items():
        print(f"decisions on {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if disagree:
        print(
            f"WARNING: the engines' decision documents differ on {disagree} of {len(inputs)} "
            "inputs",
            file=sys.stderr,
        )
    print(
        f"{'':<18}{'p50 µs':>9}{'p90 µs':>9}{'p99 µs':>9}{'dec/s':>9}"
        f"{'compile ms':>12}{'first ms':>10}"
    )
    for row in rows:
        compile_ms = "" if row.compile_seconds is None else f"{row.compile_seconds * 1000:.1f}"
        first = row.first_call_seconds if row.compile_seconds is not None else None
        first_ms = "" if first is None else f"{first * 1000:.1f}"
        print(
            f"{row.label:<18}{row.p50_us:>9.1f}{row.p90_us:>9.1f}{row.p99_us:>9.1f}"
            f"{row.per_second:>9.0f}{compile_ms:>12}{first_ms:>10}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
