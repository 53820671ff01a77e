"""The `@govern` decorator in one file: run with `.venv/bin/python examples/govern_quickstart.py`.

Every rule that decides is Rego in the standard library (rego/governor); these policy objects
only configure it. State goes to an in-memory store here; drop `storage=` to use the default
SQLite file (./.governor/governor.db) or set GOVERNOR_DATABASE_URL.
"""

import asyncio

from governor import (
    AuditPolicy,
    InMemoryStorage,
    PolicyViolation,
    RateLimitPolicy,
    ValidationPolicy,
    govern,
    governance_context,
)

store = InMemoryStorage()


@govern(
    policies=[
        ValidationPolicy(input_validator=lambda call: call["amount"] > 0),
        RateLimitPolicy(max_calls=3, window_seconds=60, per_user=True),
        AuditPolicy(sensitive_fields=["card_number"], compliance_tags=["PCI-DSS"]),
    ],
    storage=store,
)
async def charge(amount: int, card_number: str) -> str:
    return f"charged {amount} cents"


async def main() -> None:
    with governance_context(user={"id": "alice", "roles": ["member"]}):
        print(await charge(1200, "4111 1111 1111 1111"))  # positional and keyword alike
        try:
            await charge(amount=-5, card_number="4111 1111 1111 1111")
        except PolicyViolation as exc:
            print("denied:", exc.reasons)
        for _ in range(3):
            try:
                print(await charge(100, card_number="4111 1111 1111 1111"))
            except PolicyViolation as exc:
                print("denied:", exc.reasons)
    for record in store.list_audit_records():
        print(record.decision, record.reasons, record.record.get("inputs"))


asyncio.run(main())
