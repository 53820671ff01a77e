"""Policies: configurations of the Rego packages under `governor.policies`, plus Python facts.

Each class turns into `input.policies` entries (`entries(facts)`) and gathers the facts only
Python can know (`gather_facts(call)`); the Rego library decides. See `governor.policies.base`
for what the executor does with them, and each module for its entry params and facts.
"""

from governor.policies.approval import ApprovalPolicy, ApprovalStage, SequentialApprovalPolicy
from governor.policies.audit import AuditPolicy
from governor.policies.authorization import AuthorizationPolicy
from governor.policies.base import CallInfo, Policy, PolicyPhase
from governor.policies.budget import MICRO_UNITS, BudgetPolicy, usd
from governor.policies.custom import PolicyResult
from governor.policies.files import load_policies_from_dict, load_policies_from_file
from governor.policies.precheck import PrecheckPolicy
from governor.policies.rate_limit import RateLimitPolicy
from governor.policies.rego import RegoPolicy
from governor.policies.validation import ValidationPolicy

__all__ = [
    "MICRO_UNITS",
    "ApprovalPolicy",
    "ApprovalStage",
    "AuditPolicy",
    "AuthorizationPolicy",
    "BudgetPolicy",
    "CallInfo",
    "Policy",
    "PolicyPhase",
    "PolicyResult",
    "PrecheckPolicy",
    "RateLimitPolicy",
    "RegoPolicy",
    "SequentialApprovalPolicy",
    "ValidationPolicy",
    "load_policies_from_dict",
    "load_policies_from_file",
    "usd",
]
