"""`ValidationPolicy`: JSON Schemas on the arguments and the result, and Python validators.

Rego package `governor.policies.validation`. Entry params:
  `input_schema`   JSON Schema, checked in phase "pre" against `input.args`
  `output_schema`  JSON Schema, checked in phase "post" against `input.output`
  `strict`         true: a failure denies; false: it only warns
Facts: `checks[<name>] = {ok, errors}`, the verdict of the Python validator of the phase
(`input_validator` / `validator` before the call, `output_validator` after it).

Schemas may be pydantic model classes (`model_json_schema()`), pydantic `TypeAdapter`s or plain
dicts; all are made portable across engines by `governor.policies._schema`.

A validator receives the bound arguments by name, plus `"args"` and `"kwargs"` (see
`governor.policies._checks.call_arguments`); an output validator receives the result. It returns
True/False, None (it raises on invalid input, pydantic style), or `(ok, errors)`; an exception
means invalid, with the exception as the error. Validators may be async.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from governor.errors import ConfigurationError
from governor.policies._checks import (
    bool_param,
    call_arguments,
    callable_param,
    describe_exception,
    resolve,
    where,
)
from governor.policies._schema import allow_extra_names, schema_from
from governor.policies.base import CallInfo, Policy, PolicyPhase

Validator = Callable[[Any], Any]


class ValidationPolicy(Policy):
    """Check arguments and results against schemas and Python validators (decided in Rego).

    `phase` defaults to PRE, or to POST/BOTH when only/also output checks are given. `validator`
    is an alias of `input_validator` (give one of them).
    """

    policy_type = "validation"

    def __init__(
        self,
        name: str | None = None,
        phase: PolicyPhase | str | None = None,
        input_validator: Validator | None = None,
        output_validator: Validator | None = None,
        input_schema: Any = None,
        output_schema: Any = None,
        strict: bool = True,
        validator: Validator | None = None,
    ) -> None:
        owner = where("ValidationPolicy", name)
        has_output = output_validator is not None or output_schema is not None
        has_input = any(x is not None for x in (input_validator, validator, input_schema))
        if phase is None:
            if has_output:
                phase = PolicyPhase.BOTH if has_input else PolicyPhase.POST_EXECUTION
            else:
                phase = PolicyPhase.PRE_EXECUTION
        super().__init__(name=name, phase=phase)
        if input_validator is not None and validator is not None:
            raise _config(owner, "give either input_validator or validator (its alias), not both")
        if validator is not None:
            self.input_validator = callable_param(owner, "validator", validator)
        else:
            self.input_validator = callable_param(owner, "input_validator", input_validator)
        self.output_validator = callable_param(owner, "output_validator", output_validator)
        self.strict = bool_param(owner, "strict", strict)
        self.input_schema: dict[str, Any] | None = None
        self.output_schema: dict[str, Any] | None = None
        if input_schema is not None:
            schema = schema_from(owner, "input_schema", input_schema, mode="validation")
            self.input_schema = allow_extra_names(schema, ("args", "kwargs"))
        if output_schema is not None:
            self.output_schema = schema_from(
                owner, "output_schema", output_schema, mode="serialization"
            )
        if self.phase is PolicyPhase.PRE_EXECUTION and has_output:
            raise _config(
                owner,
                "output_schema/output_validator are checked after the call, but phase is PRE; "
                "use phase=BOTH or POST_EXECUTION",
            )
        if self.phase is PolicyPhase.POST_EXECUTION and has_input:
            raise _config(
                owner,
                "input_schema/input_validator are checked before the call, but phase is POST; "
                "use phase=BOTH or PRE_EXECUTION",
            )

    @property
    def validator(self) -> Validator | None:
        """Alias of `input_validator` (the README's name)."""
        return self.input_validator

    def params(self) -> dict[str, Any]:
        """`{input_schema?, output_schema?, strict}`."""
        params: dict[str, Any] = {}
        if self.input_schema is not None:
            params["input_schema"] = self.input_schema
        if self.output_schema is not None:
            params["output_schema"] = self.output_schema
        params["strict"] = self.strict
        return params

    async def gather_facts(self, call: CallInfo) -> dict[str, Any]:
        """`{"checks": {name: {ok, errors}}}` from the validator of the call's phase, if any."""
        if call.phase == "pre":
            if self.input_validator is None:
                return {}
            ok, errors = await run_validator(self.input_validator, call_arguments(call))
        else:
            if self.output_validator is None:
                return {}
            ok, errors = await run_validator(self.output_validator, call.raw_output)
        return {"checks": {self.name: {"ok": ok, "errors": errors}}}


async def run_validator(validator: Validator, value: Any) -> tuple[bool, list[str]]:
    """Run a user validator; never raises. Returns `(ok, errors)`."""
    try:
        result = await resolve(validator(value))
    except Exception as exc:
        return False, [describe_exception(exc)]
    if result is None or result is True:
        return True, []
    if result is False:
        return False, ["the validator returned False"]
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):
        ok, errs = result
        if isinstance(errs, str):
            errors = [errs]
        elif isinstance(errs, list | tuple):
            errors = [str(e) for e in errs]
        else:
            errors = [] if errs is None else [str(errs)]
        if not ok and not errors:
            errors = ["the validator returned False"]
        return ok, errors
    return False, [
        f"the validator returned {type(result).__name__}; expected True/False, None or (ok, errors)"
    ]


def _config(owner: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"{owner}: {problem}")
