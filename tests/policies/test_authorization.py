"""governor/policies/authorization.py: entries, the custom authorizer, decisions in Rego."""

from __future__ import annotations

from typing import Any

import pytest

from governor.engine.base import Engine
from governor.errors import ConfigurationError, GovernanceError
from governor.policies import AuthorizationPolicy
from tests.policies._support import decision, make_call, minimal_input


def transfer(amount: int, to: str) -> None:
    """A governed function."""


ADMIN = {"user_id": "u1", "roles": ["admin"], "permissions": ["payments.transfer"]}
VIEWER = {"user_id": "u2", "roles": ["viewer"], "permissions": []}


def test_entry_params_are_exactly_what_rego_reads() -> None:
    policy = AuthorizationPolicy(
        name="ops",
        required_roles=["admin", "ops"],
        required_permissions=["payments.transfer"],
        conditions=[{"attribute": "department", "op": "eq", "value": "finance"}],
        require_approval_on_failure=True,
        approvers=["boss"],
        approval_timeout_seconds=600,
    )
    assert policy.entry() == {
        "type": "authorization",
        "name": "ops",
        "params": {
            "required_roles": ["admin", "ops"],
            "required_permissions": ["payments.transfer"],
            "require_approval_on_failure": True,
            "conditions": [{"attribute": "department", "op": "eq", "value": "finance"}],
            "approvers": ["boss"],
            "approval_timeout_seconds": 600,
        },
    }
    assert AuthorizationPolicy(name="x").params() == {
        "required_roles": [],
        "required_permissions": [],
        "require_approval_on_failure": False,
    }


def test_roles_and_permissions_decide_in_rego(regorus: Engine) -> None:
    policy = AuthorizationPolicy(name="admins", required_roles=["admin"])
    assert decision(regorus, [policy], make_call(transfer, 5, "x", subject=ADMIN)).allowed
    denied = decision(regorus, [policy], make_call(transfer, 5, "x", subject=VIEWER))
    assert denied.reasons == ("authorization.missing_role:admins",)
    nobody = decision(regorus, [policy], make_call(transfer, 5, "x"))
    assert nobody.reasons == ("authorization.no_subject:admins",)


def test_minimal_input_allow_and_deny(regorus: Engine) -> None:
    entry = AuthorizationPolicy(name="p", required_permissions=["payments.transfer"]).entry()
    ok = regorus.evaluate("governor.decision", minimal_input(entry, subject=ADMIN))
    assert ok["decision"] == "allow"
    bad = regorus.evaluate("governor.decision", minimal_input(entry, subject=VIEWER))
    assert bad["reasons"] == ["authorization.missing_permission:p"]


def test_require_approval_on_failure_confirms(regorus: Engine) -> None:
    policy = AuthorizationPolicy(
        name="admins",
        required_roles=["admin"],
        require_approval_on_failure=True,
        approvers=["boss"],
    )
    result = decision(regorus, [policy], make_call(transfer, 5, "x", subject=VIEWER))
    assert result.decision == "confirm"
    assert result.approval["approvers"] == ["boss"]


def small_amounts(request: dict[str, Any]) -> bool:
    return bool(request["inputs"]["kwargs"]["amount"] < 100)


@pytest.mark.parametrize("positional", [True, False])
def test_custom_authorizer_enters_as_a_check_fact(regorus: Engine, positional: bool) -> None:
    policy = AuthorizationPolicy(name="small", custom_authorizer=small_amounts)

    def call(amount: int) -> Any:
        if positional:
            return make_call(transfer, amount, "x", subject=ADMIN)
        return make_call(transfer, amount=amount, to="x", subject=ADMIN)

    assert decision(regorus, [policy], call(5)).allowed
    denied = decision(regorus, [policy], call(500))
    assert denied.reasons == ("validation.check_failed:small.custom_authorizer",)


def test_custom_authorizer_with_approval_on_failure_asks_for_approval(regorus: Engine) -> None:
    policy = AuthorizationPolicy(
        name="small",
        custom_authorizer=small_amounts,
        require_approval_on_failure=True,
        approvers=["boss"],
    )
    assert decision(regorus, [policy], make_call(transfer, 5, "x", subject=ADMIN)).allowed
    result = decision(regorus, [policy], make_call(transfer, 500, "x", subject=ADMIN))
    assert result.decision == "confirm"
    assert result.reasons == ("approval.required:small.custom_authorizer",)
    assert result.approval["approvers"] == ["boss"]
    approved = decision(
        regorus,
        [policy],
        make_call(transfer, 500, "x", subject=ADMIN),
        facts={"approval": {"small.custom_authorizer": {"status": "approved"}}},
    )
    assert approved.allowed


def test_custom_authorizer_sees_the_principal_at_context_key(regorus: Engine) -> None:
    seen: list[Any] = []

    def authorizer(request: dict[str, Any]) -> bool:
        seen.append(request)
        return bool(request["principal"]["id"] == "u1")

    policy = AuthorizationPolicy(
        name="me", custom_authorizer=authorizer, context_key="session.user"
    )
    call = make_call(transfer, 1, "x", context={"session": {"user": {"id": "u1"}}})
    assert policy.principal(call) == {"id": "u1"}
    assert decision(regorus, [policy], call).allowed
    assert set(seen[0]) == {"principal", "inputs", "context", "execution_id", "function_name"}
    assert seen[0]["function_name"] == "transfer"


@pytest.mark.parametrize(
    "authorizer",
    [lambda r: 1 / 0, lambda r: "yes"],
    ids=["raises", "not-a-bool"],
)
def test_a_broken_authorizer_refuses(regorus: Engine, authorizer: Any) -> None:
    policy = AuthorizationPolicy(name="b", custom_authorizer=authorizer)
    assert decision(regorus, [policy], make_call(transfer, 1, "x")).decision == "deny"


def test_with_a_custom_authorizer_entry_refuses_and_entries_has_two() -> None:
    policy = AuthorizationPolicy(name="c", custom_authorizer=small_amounts)
    with pytest.raises(GovernanceError, match="entries"):
        policy.entry()
    assert [e["type"] for e in policy.entries()] == ["authorization", "validation"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"required_roles": "admin"}, "required_roles must be a list of strings"),
        ({"required_permissions": [1]}, "required_permissions must be a list of non-empty strings"),
        ({"custom_authorizer": "yes"}, "custom_authorizer must be a callable"),
        ({"context_key": ""}, "context_key must be a non-empty string"),
        ({"require_approval_on_failure": 1}, "require_approval_on_failure must be true or false"),
        (
            {"conditions": [{"attribute": "a", "op": "like", "value": 1}]},
            r"conditions\[0\].op must be one of",
        ),
        (
            {"conditions": [{"attribute": "a", "op": "in", "value": 1}]},
            r"conditions\[0\].value must be a list",
        ),
        ({"conditions": [{"attribute": "a", "op": "eq"}]}, r"conditions\[0\].value is required"),
        ({"conditions": [{"attr": "a", "op": "eq"}]}, r"conditions\[0\] has unknown key\(s\) attr"),
        ({"approval_timeout_seconds": 0}, "approval_timeout_seconds must be a whole number >= 1"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"AuthorizationPolicy\(name='a'\): " + message):
        AuthorizationPolicy(name="a", **kwargs)
