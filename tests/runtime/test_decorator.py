"""`@govern` and `@govern_class`: each documented example of governor 0.2.0's README behaves as
documented (results, exceptions, stored records, events), positional and keyword calls alike,
and the weaknesses of 0.2.0 (peer study §10) are not repeated."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from governor import (
    ApprovalPending,
    ApprovalPolicy,
    ApprovalRejected,
    AuditPolicy,
    AuthorizationPolicy,
    BudgetPolicy,
    EventEmitter,
    EventType,
    ExecutionStatus,
    InMemoryStorage,
    Policy,
    PolicyResult,
    PolicyViolation,
    PrecheckPolicy,
    RateLimitExceeded,
    RateLimitPolicy,
    ValidationPolicy,
    govern,
    govern_class,
    governance_context,
    load_policies_from_file,
    runtime,
    usd,
)
from governor.events import Event
from governor.serialization import MASK
from governor.storage import StorageBackend

REPO = Path(__file__).resolve().parents[2]


def everything_stored(store: StorageBackend) -> str:
    """Every record of the store as one JSON text, to search for leaks."""
    parts: list[Any] = []
    for execution in store.list_executions(limit=None):
        parts.append([execution.inputs, execution.outputs, execution.metadata, execution.error])
        parts += [s.state for s in store.list_snapshots(execution.id)]
    parts += [e.data for e in store.list_events(limit=None)]
    parts += [[a.record, a.reasons] for a in store.list_audit_records(limit=None)]
    return json.dumps(parts)


# -- Quick start, basic usage ----------------------------------------------------------------------


def test_basic_usage_returns_the_result_and_leaves_one_audit_record(store: StorageBackend) -> None:
    @govern(policies=[AuditPolicy()], storage=store)
    async def process_data(data: dict[str, Any]) -> dict[str, Any]:
        """Process data with automatic audit logging."""
        return {"processed": True, "data": data}

    result = asyncio.run(process_data({"key": "value"}))
    assert result == {"processed": True, "data": {"key": "value"}}
    assert process_data.__name__ == "process_data" and process_data.__governed__  # type: ignore[attr-defined]
    (execution,) = store.list_executions()
    assert execution.status is ExecutionStatus.COMPLETED
    assert execution.inputs == {"args": [{"key": "value"}], "kwargs": {}}
    assert execution.outputs == result and execution.decision == "allow"
    (audit,) = store.list_audit_records()
    assert audit.action.endswith(".process_data") and audit.decision == "allow"
    assert audit.record["outcome"] == "completed" and audit.duration_ms is not None
    assert [s.checkpoint for s in store.list_snapshots(execution.id)] == [
        "pre_execution",
        "post_execution",
    ]
    assert [e.event_type for e in store.list_events(execution_id=execution.id)] == [
        "execution.started",
        "policy.evaluated",
        "state.captured",
        "policy.evaluated",
        "state.captured",
        "execution.completed",
    ]
    assert store.verify_audit_chain() is None


def test_a_sync_function_is_governed_in_the_callers_thread_even_inside_a_running_loop(
    memory: InMemoryStorage,
) -> None:
    async def check(x: dict[str, Any]) -> bool:
        await asyncio.sleep(0.01)  # a validator that really awaits
        return bool(x["amount"] > 0)

    @govern(policies=[ValidationPolicy(validator=check)], storage=memory)
    def pay(amount: int) -> tuple[int, str]:
        return amount, threading.current_thread().name

    async def from_async_code() -> tuple[int, str]:
        return pay(5)

    assert pay(3) == (3, threading.current_thread().name)
    assert asyncio.run(from_async_code()) == (5, threading.current_thread().name)
    with pytest.raises(PolicyViolation):
        pay(-1)


# -- Validation ------------------------------------------------------------------------------------


class UserInput(BaseModel):
    name: str
    age: int


def test_validation_with_a_pydantic_schema_checks_positional_and_keyword_calls(
    memory: InMemoryStorage,
) -> None:
    calls: list[tuple[str, Any]] = []

    @govern(policies=[ValidationPolicy(input_schema=UserInput)], storage=memory)
    async def create_user(name: str, age: Any) -> dict[str, Any]:
        calls.append((name, age))
        return {"user_id": 123, "name": name, "age": age}

    assert asyncio.run(create_user(name="Ann", age=30))["user_id"] == 123
    assert asyncio.run(create_user("Bob", 41))["name"] == "Bob"
    for bad in (lambda: create_user("Cy", "thirty"), lambda: create_user(name="Cy", age="x")):
        with pytest.raises(PolicyViolation) as caught:
            asyncio.run(bad())
        assert caught.value.reasons == ("validation.input_invalid:ValidationPolicy",)
    assert calls == [("Ann", 30), ("Bob", 41)]


@pytest.mark.parametrize(
    "policy",
    [
        ValidationPolicy(input_validator=lambda x: x.get("amount", 0) > 0),
        ValidationPolicy(validator=lambda i: i["amount"] > 0),
        ValidationPolicy(validator=lambda i: i["kwargs"]["amount"] > 0),
        ValidationPolicy(validator=lambda i: i["args"][0] > 0 if i["args"] else i["amount"] > 0),
    ],
    ids=["input_validator-by-name", "validator", "kwargs-shape", "args-shape"],
)
def test_validators_see_arguments_by_name_and_in_the_args_kwargs_shape(
    policy: ValidationPolicy, memory: InMemoryStorage
) -> None:
    @govern(policies=[policy], storage=memory)
    async def pay(amount: float, account: str = "ACC1") -> str:
        return f"paid {amount}"

    assert asyncio.run(pay(100)) == "paid 100"
    assert asyncio.run(pay(amount=100, account="A")) == "paid 100"
    with pytest.raises(PolicyViolation, match="validation.check_failed"):
        asyncio.run(pay(-5))
    with pytest.raises(PolicyViolation):
        asyncio.run(pay(amount=-5))


def test_an_output_validator_withholds_a_bad_result_after_the_call(
    memory: InMemoryStorage,
) -> None:
    ran: list[int] = []

    @govern(policies=[ValidationPolicy(output_validator=lambda out: out["ok"])], storage=memory)
    def compute(x: int) -> dict[str, bool]:
        ran.append(x)
        return {"ok": x > 0}

    assert compute(1) == {"ok": True}
    with pytest.raises(PolicyViolation) as caught:
        compute(-1)
    assert caught.value.phase == "post" and "withheld" in str(caught.value)
    assert ran == [1, -1]
    audits = memory.list_audit_records()
    assert [a.decision for a in audits] == ["allow", "deny"]
    assert audits[1].record["post"]["reasons"] == ["validation.check_failed:ValidationPolicy"]


# -- Authorization ---------------------------------------------------------------------------------


def test_authorization_reads_the_static_context_and_the_per_call_context(
    memory: InMemoryStorage,
) -> None:
    @govern(
        policies=[AuthorizationPolicy(required_roles={"admin"})],  # type: ignore[arg-type]
        context={"user": {"roles": ["admin", "user"]}},
        storage=memory,
    )
    async def admin_operation() -> str:
        return "Admin action completed"

    @govern(policies=[AuthorizationPolicy(required_roles=["admin"])], storage=memory)
    async def per_request() -> str:
        return "ok"

    assert asyncio.run(admin_operation()) == "Admin action completed"
    with pytest.raises(PolicyViolation, match="authorization.no_subject"):
        asyncio.run(per_request())
    with (
        governance_context(user={"id": "u1", "roles": ["viewer"]}),
        pytest.raises(PolicyViolation, match="authorization.missing_role"),
    ):
        asyncio.run(per_request())
    with governance_context(user={"id": "u2", "roles": ["admin"]}):
        assert asyncio.run(per_request()) == "ok"
    assert memory.list_audit_records()[-1].actor == "u2"


# -- Approval --------------------------------------------------------------------------------------


def test_auto_approve_with_positional_arguments_is_not_a_bypass(memory: InMemoryStorage) -> None:
    ran: list[float] = []

    @govern(
        policies=[
            ApprovalPolicy(
                approvers=["cfo@company.com"],
                timeout_seconds=1,
                on_timeout="pending",
                auto_approve_condition=lambda inputs: (
                    inputs.get("kwargs", {}).get("amount", 0) < 1000
                ),
            )
        ],
        storage=memory,
    )
    async def process_payment(amount: float, account: str) -> dict[str, Any]:
        ran.append(amount)
        return {"status": "success", "amount": amount}

    assert asyncio.run(process_payment(500, "ACC123")) == {"status": "success", "amount": 500}
    for call in (
        lambda: process_payment(5000, "ACC456"),
        lambda: process_payment(amount=5000, account="A"),
    ):
        with pytest.raises(TimeoutError) as caught:  # the README's except TimeoutError
            asyncio.run(call())
        assert isinstance(caught.value, ApprovalPending) and isinstance(
            caught.value, PermissionError
        )
        assert caught.value.approval["approvers"] == ["cfo@company.com"]
    assert ran == [500]


def test_a_pending_approval_is_stored_with_its_arguments_before_the_caller_hears_of_it(
    store: StorageBackend,
) -> None:
    states: list[tuple[str, dict[str, Any]]] = []

    async def handle_state_saved(execution_id: str, state: dict[str, Any]) -> None:
        states.append((execution_id, state))

    @govern(
        policies=[ApprovalPolicy(approvers=["cfo"], timeout_seconds=1, on_timeout="pending")],
        capture_state=True,
        on_state_saved=handle_state_saved,
        storage=store,
    )
    async def large_transfer(amount: Decimal, recipient: str) -> dict[str, str]:
        return {"status": "completed"}

    with pytest.raises(PermissionError) as caught:
        asyncio.run(large_transfer(Decimal("50000.00"), "BigCorp"))
    assert isinstance(caught.value, ApprovalPending)
    execution_id = caught.value.execution_id
    execution = store.get_execution(execution_id)
    assert execution is not None and execution.status is ExecutionStatus.AWAITING_APPROVAL
    pending = [s for s in store.list_snapshots(execution_id) if s.checkpoint == "awaiting_approval"]
    assert pending[0].state["arguments"]["args"][0] == {"__type__": "decimal", "value": "50000.00"}
    assert [eid for eid, s in states if s.get("timeout")] == [execution_id]
    assert states[-1][1]["approval"]["timeout_seconds"] == 1
    (audit,) = store.list_audit_records()
    assert audit.decision == "confirm" and audit.record["outcome"] == "awaiting_approval"
    assert "approval.requested" in [
        e.event_type for e in store.list_events(execution_id=execution_id)
    ]


def test_a_handler_that_decides_at_once_is_honoured(memory: InMemoryStorage) -> None:
    asked: list[list[str]] = []

    def approve(notice: Any) -> tuple[bool, str, str]:
        asked.append(list(notice.approvers))
        return True, "ops", "looks fine"

    @govern(policies=[ApprovalPolicy(approvers=["ops"])], approval_handler=approve, storage=memory)
    def deploy(version: str) -> str:
        return f"deployed {version}"

    @govern(
        policies=[ApprovalPolicy(approvers=["ops"])],
        approval_handler=lambda request: False,
        storage=memory,
    )
    def drop_table(name: str) -> None:
        raise AssertionError("must not run")

    assert deploy("2.0") == "deployed 2.0" and asked == [["ops"]]
    with pytest.raises(ApprovalRejected):
        drop_table("users")
    kinds = [e.event_type for e in memory.list_events(limit=None)]
    assert kinds.count("approval.granted") == 1 and kinds.count("approval.rejected") == 1
    statuses = sorted(e.status.value for e in memory.list_executions())
    assert statuses == ["completed", "rejected"]


def test_an_approval_callback_that_refuses_is_an_approval_rejected(memory: InMemoryStorage) -> None:
    @govern(
        policies=[
            ApprovalPolicy(approvers=["cfo"], approval_callback=lambda eid, name, args: False)
        ],
        storage=memory,
    )
    async def wire(amount: int) -> int:
        raise AssertionError("must not run")

    with pytest.raises(ApprovalRejected) as caught:
        asyncio.run(wire(10))
    assert isinstance(caught.value, PolicyViolation)
    assert caught.value.reasons == ("approval.rejected:ApprovalPolicy",)
    (execution,) = memory.list_executions()
    assert execution.status is ExecutionStatus.REJECTED


def test_nested_governed_calls_ask_each_stage_in_turn(memory: InMemoryStorage) -> None:
    asked: list[list[str]] = []

    def approve(notice: Any) -> tuple[bool, str]:
        asked.append(list(notice.approvers))
        return True, notice.approvers[0]

    @govern(
        policies=[ApprovalPolicy(approvers=["cto@company.com"])],
        approval_handler=approve,
        storage=memory,
    )
    async def stage3_executive(model_name: str, version: str) -> dict[str, str]:
        return {"status": "deployed", "model": model_name}

    @govern(
        policies=[ApprovalPolicy(approvers=["security@company.com"])],
        approval_handler=approve,
        storage=memory,
    )
    async def stage2_security(model_name: str, version: str) -> dict[str, str]:
        return await stage3_executive(model_name, version)

    @govern(
        policies=[ApprovalPolicy(approvers=["ai-safety@company.com"])],
        approval_handler=approve,
        storage=memory,
    )
    async def deploy_ai_model(model_name: str, version: str) -> dict[str, str]:
        return await stage2_security(model_name, version)

    assert asyncio.run(deploy_ai_model("gpt-custom", "2.0"))["status"] == "deployed"
    assert asked == [["ai-safety@company.com"], ["security@company.com"], ["cto@company.com"]]


# -- Classes and arguments that are not JSON -------------------------------------------------------


class Client:
    """Stands for an HTTP client: not JSON."""


def test_govern_class_governs_methods_with_self_and_non_json_arguments(
    memory: InMemoryStorage,
) -> None:
    @govern_class(policies=[AuditPolicy()], methods=["process", "execute"], storage=memory)
    class MyAgent:
        def __init__(self) -> None:
            self.client = Client()

        async def process(self, data: Any) -> Any:
            return data

        async def execute(self, cmd: str) -> str:
            return cmd

        async def helper(self) -> str:
            return "not governed"

    agent = MyAgent()
    payload = {"x": 1, "when": dt.datetime(2026, 1, 1), "tags": {"b", "a"}, "raw": b"\x01"}
    assert asyncio.run(agent.process(payload)) is payload
    assert asyncio.run(agent.execute(cmd="ls")) == "ls"
    assert asyncio.run(agent.process(agent.client)) is agent.client
    assert asyncio.run(agent.helper()) == "not governed"
    executions = memory.list_executions()
    assert len(executions) == 3
    by_name = {e.function_qualname.split(".")[-1]: e for e in executions if e.outputs != "ls"}
    stored = [e.inputs for e in executions]
    assert {"args": [], "kwargs": {"cmd": "ls"}} in stored
    assert {
        "args": [
            {
                "x": 1,
                "when": "2026-01-01T00:00:00",
                "tags": ["a", "b"],
                "raw": {"__type__": "bytes", "repr": "b'\\x01'"},
            }
        ],
        "kwargs": {},
    } in stored
    client_call = [e for e in executions if e.inputs["args"] and "__type__" in e.inputs["args"][0]]
    assert client_call[0].inputs["args"][0]["__type__"].endswith("test_decorator.Client")
    assert by_name  # every governed method is recorded by its qualname
    assert all("self" not in json.dumps(e.inputs) for e in executions)


def test_govern_class_without_methods_governs_public_async_methods(memory: InMemoryStorage) -> None:
    @govern_class(storage=memory)
    class Agent:
        async def run(self) -> int:
            return 1

        async def _private(self) -> int:
            return 2

        def sync_helper(self) -> int:
            return 3

    agent = Agent()
    assert asyncio.run(agent.run()) == 1
    assert asyncio.run(agent._private()) == 2 and agent.sync_helper() == 3
    assert [e.function_name for e in memory.list_executions()] == ["run"]


# -- Rate limits -----------------------------------------------------------------------------------


def test_per_user_rate_limit_without_a_user_is_a_deny_with_a_clear_reason(
    memory: InMemoryStorage,
) -> None:
    @govern(
        policies=[RateLimitPolicy(max_calls=1, window_seconds=60, per_user=True)], storage=memory
    )
    def ask(question: str) -> str:
        return "answer"

    for _ in range(3):
        with pytest.raises(RateLimitExceeded) as caught:
            ask("q")
        assert caught.value.reasons == ("rate_limit.no_user:RateLimitPolicy",)
    with governance_context(user={"id": "u1"}):
        assert ask("q") == "answer"
        with pytest.raises(RateLimitExceeded, match="rate_limit.exceeded"):
            ask("q")
    with governance_context(user={"id": "u2"}):
        assert ask("q") == "answer"


# -- Masking ---------------------------------------------------------------------------------------


def test_sensitive_fields_are_masked_everywhere_positional_arguments_included(
    store: StorageBackend,
) -> None:
    emitter = EventEmitter()
    seen: list[Event] = []
    emitter.on_any(seen.append)
    logged: list[dict[str, Any]] = []

    @govern(
        policies=[AuditPolicy(sensitive_fields=["password", "ssn"], custom_logger=logged.append)],
        storage=store,
        emitter=emitter,
        on_state_saved=lambda eid, state: seen.append(
            Event.create(EventType.CUSTOM, eid, data=state)
        ),
    )
    def register(user: dict[str, Any], password: str, *, note: str = "") -> dict[str, Any]:
        return {"ssn": user["ssn"], "ok": True}

    assert register({"name": "ann", "ssn": "123-45-6789"}, "hunter2") == {
        "ssn": "123-45-6789",
        "ok": True,
    }
    text = everything_stored(store)
    assert "hunter2" not in text and "123-45-6789" not in text
    assert "hunter2" not in json.dumps([e.data for e in seen] + logged, default=str)
    assert "123-45-6789" not in json.dumps([e.data for e in seen] + logged, default=str)
    (audit,) = store.list_audit_records()
    assert audit.record["inputs"] == {"args": [{"name": "ann", "ssn": MASK}, MASK], "kwargs": {}}
    assert audit.record["output"] == {"ssn": MASK, "ok": True}
    assert logged and logged[0]["record"]["inputs"]["args"][1] == MASK


def test_log_inputs_false_masks_the_arguments_in_the_audit_record(memory: InMemoryStorage) -> None:
    @govern(policies=[AuditPolicy(log_inputs=False, log_outputs=False)], storage=memory)
    def secret(a: int) -> int:
        return a

    assert secret(1) == 1
    (audit,) = memory.list_audit_records()
    assert audit.record["inputs"] == MASK and audit.record["output"] == MASK


# -- Denials never run the function, and leave one audit record ------------------------------------


def test_a_denied_call_never_runs_and_its_audit_record_says_why(store: StorageBackend) -> None:
    ran: list[int] = []
    violations: list[Event] = []
    emitter = EventEmitter()
    emitter.on(EventType.POLICY_VIOLATED, violations.append)

    @govern(
        policies=[ValidationPolicy(validator=lambda i: i["n"] < 10)], storage=store, emitter=emitter
    )
    def act(n: int) -> int:
        ran.append(n)
        return n

    with pytest.raises(PolicyViolation) as caught:
        act(99)
    assert ran == []
    assert "did not run" in str(caught.value) and caught.value.execution_id
    (audit,) = store.list_audit_records()
    assert audit.decision == "deny" and audit.reasons == [
        "validation.check_failed:ValidationPolicy"
    ]
    assert audit.record["outcome"] == "denied"
    assert audit.record["violations"][0]["policy"] == "ValidationPolicy"
    execution = store.get_execution(caught.value.execution_id)
    assert execution is not None and execution.status is ExecutionStatus.FAILED
    assert [e.data["reasons"] for e in violations] == [["validation.check_failed:ValidationPolicy"]]


def test_a_function_that_raises_is_recorded_as_failed_and_the_error_propagates(
    memory: InMemoryStorage,
) -> None:
    @govern(storage=memory)
    async def boom() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        asyncio.run(boom())
    (execution,) = memory.list_executions()
    assert execution.status is ExecutionStatus.FAILED and execution.error_type == "KeyError"
    (audit,) = memory.list_audit_records()
    assert audit.record["outcome"] == "failed" and audit.record["error"]["type"] == "KeyError"
    assert memory.list_events(event_type="execution.failed")


# -- Custom policies, redaction, budgets, actions, policy files ------------------------------------


class WeekdayOnly(Policy):
    """The README's custom policy: a Python check whose result Rego turns into the decision."""

    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed
        super().__init__()

    async def evaluate(
        self,
        execution_id: str,
        function_name: str,
        inputs: dict[str, Any],
        outputs: Any = None,
        context: dict[str, Any] | None = None,
    ) -> PolicyResult:
        if self.allowed:
            return PolicyResult.success(policy_name=self.name, policy_type=self.get_policy_type())
        return PolicyResult.failure(
            policy_name=self.name, policy_type=self.get_policy_type(), message="Custom check failed"
        )


def test_a_custom_policy_result_enters_the_decision(memory: InMemoryStorage) -> None:
    @govern(policies=[WeekdayOnly(True)], storage=memory)
    def ok() -> int:
        return 1

    @govern(policies=[WeekdayOnly(False)], storage=memory)
    def refused() -> int:
        return 2

    assert ok() == 1
    with pytest.raises(PolicyViolation, match="validation.check_failed:WeekdayOnly"):
        refused()


def test_a_redact_decision_rewrites_the_text_argument_before_the_call(
    memory: InMemoryStorage,
) -> None:
    received: list[str] = []

    @govern(
        policies=[PrecheckPolicy(pii={"actions": {"email": "redact"}, "scan_args": True})],
        storage=memory,
    )
    def send(message: str, channel: str = "general") -> str:
        received.append(message)
        return "sent"

    assert send("mail ann@example.com now") == "sent"
    assert send(message="or bob@example.org") == "sent"
    assert received == ["mail [REDACTED_EMAIL] now", "or [REDACTED_EMAIL]"]
    assert [a.decision for a in memory.list_audit_records()] == ["redact", "redact"]
    assert "@example" not in everything_stored(memory)  # records hold what the function got


def test_a_budget_reserves_settles_with_the_actual_cost_and_releases_on_failure(
    store: StorageBackend,
) -> None:
    policy = BudgetPolicy(
        limit=usd("1"),
        estimated_cost=usd("0.40"),
        actual_cost=lambda result: usd("0.30"),
        per_user=False,
    )

    @govern(policies=[policy], storage=store, capture_state=False)
    def call_model(fail: bool = False) -> str:
        if fail:
            raise RuntimeError("provider down")
        return "text"

    assert call_model() == "text"
    with pytest.raises(RuntimeError):
        call_model(fail=True)  # reserved, then released
    assert call_model() == "text"
    assert call_model() == "text"  # 0.90 spent after this one: 0.60 + 0.40 <= 1
    with pytest.raises(PolicyViolation, match="budget.exceeded"):
        call_model()  # 0.90 + 0.40 > 1
    from governor.storage import month_period

    start, end = month_period()
    totals = store.usage_totals(policy.key(_info()), start, end)
    assert totals["spent"] == usd("0.90") and totals["count"] == 3 and totals["reserved"] == 0


def _info() -> Any:
    from governor.policies.base import CallInfo

    return CallInfo(execution_id="x", function_name="f", phase="pre", args={}, inputs={})


def test_pre_and_post_actions_run_around_the_call_with_the_execution_context(
    memory: InMemoryStorage,
) -> None:
    order: list[str] = []

    async def pre(ctx: Any) -> None:
        order.append(f"pre:{ctx.function_name}:{ctx.inputs['args']}")

    def post(ctx: Any) -> None:
        order.append(f"post:{ctx.outputs}:{ctx.decision.decision}")

    @govern(pre=pre, post=[post], storage=memory)
    async def work(x: int) -> int:
        order.append("run")
        return x * 2

    assert asyncio.run(work(2)) == 4
    assert order == ["pre:work:[2]", "run", "post:4:allow"]
    kinds = [e.event_type for e in memory.list_events(limit=None)]
    assert kinds.index("pre_action.completed") < kinds.index("post_action.started")


def test_the_readme_policy_file_and_the_bundles_governance_files_govern_calls(
    memory: InMemoryStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "governance.yaml"
    readme.write_text(
        "policies:\n"
        "  - type: authorization\n    required_roles: [admin, finance]\n"
        "  - type: rate_limit\n    max_calls: 100\n    window_seconds: 60\n"
        "  - type: audit\n    compliance_tags: [GDPR, SOC2]\n"
        "    sensitive_fields: [password, ssn]\n"
    )

    @govern(policies=load_policies_from_file(readme), storage=memory)
    async def process_data(data: dict[str, Any]) -> dict[str, bool]:
        return {"processed": True}

    with governance_context(user={"id": "u1", "roles": ["finance"]}):
        assert asyncio.run(process_data({"ssn": "1"})) == {"processed": True}
    audit = memory.list_audit_records()[-1]
    assert audit.record["tags"] == ["GDPR", "SOC2"] and audit.record["inputs"]["args"] == [
        {"ssn": MASK}
    ]

    monkeypatch.setenv(runtime.ENV_BUNDLE, str(REPO / "bundles" / "development"))
    runtime.reset()

    @govern(
        policies=load_policies_from_file(REPO / "bundles/development/governance.yaml"),
        storage=memory,
    )
    def tool(text: str) -> str:
        return text

    with governance_context(user={"id": "u1"}):
        assert tool("hello") == "hello"
    with pytest.raises(RateLimitExceeded, match="rate_limit.no_user"):
        tool("anonymous")


def test_on_state_saved_gets_each_snapshot_and_a_failing_callback_changes_nothing(
    memory: InMemoryStorage, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def callback(execution_id: str, state: dict[str, Any]) -> None:
        seen.append(state["checkpoint"])
        raise RuntimeError("callback bug")

    @govern(on_state_saved=callback, storage=memory)
    def work() -> int:
        return 7

    assert work() == 7
    assert seen == ["pre_execution", "post_execution"]
    assert "on_state_saved raised" in caplog.text
    assert memory.list_executions()[0].status is ExecutionStatus.COMPLETED


def test_bad_decorator_arguments_are_configuration_errors() -> None:
    from governor import ConfigurationError

    with pytest.raises(ConfigurationError, match="item 0 is dict"):
        govern(policies=[{"type": "rate_limit"}])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="context"):
        govern(context=["user"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="has no method 'missing'"):

        @govern_class(methods=["missing"])
        class Agent:
            pass
