"""Known-bad variants of the order workflow's ASL: each a defect real Step Functions rejects.

moto's Step Functions (the local engine) accepts all of them, so a bad edit of
statemachine/order_processor.asl.json would pass every local test and fail only at `sam deploy`.
tests/test_asl_validation.py feeds each variant to the offline checks of tests/asl_validator.py and
expects each check named in `caught_by` to reject it; `rule` cites the Amazon States Language
specification (https://states-language.net/spec.html, the `#anchor` given) or the Step Functions
behaviour it breaks. Where statelint, the chosen validator, misses a variant, `statelint_misses` says
why, and another check covers it.

How the candidates fared on this corpus (17 variants; our own definition passed all four):
@wmfs/statelint 1.30.0 rejected 14; LocalStack's static analyser (localstack-core 2026.3.0, Python
3.13) and the copy moto 5.2.5 vendors rejected the same 10; asl-validator 4.0.0 rejected 9. statelint
plus the vendored analyser miss only `custom_error_named_states`, which `own_rules` catches.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Definition = dict[str, Any]

# States of our workflow the mutations edit (a rename in the ASL fails the corpus loudly: KeyError).
READ_SHOP = "Shop open?"
TAKE_SLOT = "Is capacity available?"
SHOP_CLOSED = "Shop closed"
EMIT_UNAVAILABLE = "Emit - Shop unavailable"
CUSTOMER_WAIT = "Emit - Workflow Started TT"
BARISTA_WAIT = "Emit - Awaiting Completion TT"
ORDER_FAILED = "Order failed"


@dataclass(frozen=True)
class BadVariant:
    """One defect: how to make it from our definition, the rule it breaks, who catches it."""

    name: str
    rule: str
    mutate: Callable[[Definition], None]  # edits the copy it is given in place
    caught_by: tuple[str, ...]  # names of tests/asl_validator.py's checks that reject it
    statelint_misses: str = ""  # why statelint accepts it, when it does

    def apply(self, definition: Definition) -> Definition:
        """A mutated deep copy of `definition` (the original is left alone)."""
        variant = copy.deepcopy(definition)
        self.mutate(variant)
        return variant


def _set(state: str, key: str, value: Any) -> Callable[[Definition], None]:
    def mutate(definition: Definition) -> None:
        definition["States"][state][key] = value

    return mutate


def _edit_first_retrier(state: str, key: str, value: Any) -> Callable[[Definition], None]:
    def mutate(definition: Definition) -> None:
        definition["States"][state]["Retry"][0][key] = value

    return mutate


def _edit_first_catcher(state: str, key: str, value: Any) -> Callable[[Definition], None]:
    def mutate(definition: Definition) -> None:
        definition["States"][state]["Catch"][0][key] = value

    return mutate


def _catch_all_first(definition: Definition) -> None:
    catchers = definition["States"][TAKE_SLOT]["Catch"]
    catchers.insert(0, catchers.pop())  # the States.ALL catcher is last in our ASL


def _retry_on_pass_state(definition: Definition) -> None:
    definition["States"][SHOP_CLOSED]["Retry"] = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}]


def _detail_field_not_a_path(definition: Definition) -> None:
    detail = definition["States"][EMIT_UNAVAILABLE]["Parameters"]["Entries"][0]["Detail"]
    detail["orderId.$"] = "detail.orderId"  # missing the leading $


SPEC = "https://states-language.net/spec.html"

BAD_VARIANTS: tuple[BadVariant, ...] = (
    BadVariant(
        "heartbeat_not_below_timeout",
        f"{SPEC}#task-state: HeartbeatSeconds MUST be smaller than TimeoutSeconds",
        _set(CUSTOMER_WAIT, "TimeoutSeconds", 300),  # its HeartbeatSeconds is 300
        caught_by=("static_analysis", "own_rules"),
        statelint_misses="its schema checks each field's type and range, never two fields together",
    ),
    BadVariant(
        "timeout_seconds_zero",
        f"{SPEC}#task-state: TimeoutSeconds and HeartbeatSeconds MUST be positive integers",
        _set(BARISTA_WAIT, "TimeoutSeconds", 0),
        caught_by=("statelint", "static_analysis"),
    ),
    BadVariant(
        "custom_error_named_states",
        f"{SPEC}#error-names: error names a state reports MUST NOT begin with the reserved prefix 'States.'",
        _set(ORDER_FAILED, "Error", "States.OrderFailed"),
        caught_by=("own_rules",),
        statelint_misses="a Fail state's Error may be any string in its schema",
    ),
    BadVariant(
        "catch_unknown_states_error",
        f"{SPEC}#appendix-a: 'States.' names are the predefined error codes; Step Functions refuses others",
        _edit_first_catcher(READ_SHOP, "ErrorEquals", ["States.NoSuchError"]),
        caught_by=("static_analysis", "own_rules"),
        statelint_misses="ErrorEquals may hold any string in its schema",
    ),
    BadVariant(
        "states_all_not_alone",
        f"{SPEC}#error-names: States.ALL MUST appear alone in its ErrorEquals array",
        _edit_first_catcher(READ_SHOP, "ErrorEquals", ["States.ALL", "States.Timeout"]),
        caught_by=("statelint", "static_analysis"),
    ),
    BadVariant(
        "states_all_not_last",
        f"{SPEC}#catching-errors: a catcher matching States.ALL MUST be the last catcher",
        _catch_all_first,
        caught_by=("statelint",),
    ),
    BadVariant(
        "result_path_not_a_reference_path",
        f"{SPEC}#ref-paths: ResultPath is a Reference Path, which has no wildcards or filters",
        _set(READ_SHOP, "ResultPath", "$.shop[*]"),
        caught_by=("statelint",),
    ),
    BadVariant(
        "retry_on_pass_state",
        f"{SPEC}#state-type-table: only Task, Parallel and Map states have Retry and Catch",
        _retry_on_pass_state,
        caught_by=("statelint",),
    ),
    BadVariant(
        "max_attempts_negative",
        f"{SPEC}#retrying-after-error: MaxAttempts MUST be a non-negative integer",
        _edit_first_retrier(READ_SHOP, "MaxAttempts", -1),
        caught_by=("statelint", "static_analysis"),
    ),
    BadVariant(
        "interval_seconds_zero",
        f"{SPEC}#retrying-after-error: IntervalSeconds MUST be a positive integer",
        _edit_first_retrier(READ_SHOP, "IntervalSeconds", 0),
        caught_by=("statelint", "static_analysis"),
    ),
    BadVariant(
        "backoff_rate_below_one",
        f"{SPEC}#retrying-after-error: BackoffRate MUST be greater than or equal to 1.0",
        _edit_first_retrier(READ_SHOP, "BackoffRate", 0.5),
        caught_by=("statelint", "static_analysis"),
    ),
    BadVariant(
        "jitter_strategy_unknown",
        f"{SPEC}#retrying-after-error: JitterStrategy MUST be FULL or NONE",
        _edit_first_retrier(READ_SHOP, "JitterStrategy", "HALF"),
        caught_by=("statelint", "static_analysis"),
    ),
    BadVariant(
        "unknown_field",
        "Step Functions refuses a field the state's type does not define (here a misspelt TimeoutSeconds)",
        _set(READ_SHOP, "TimeoutSecond", 60),
        caught_by=("statelint", "static_analysis"),
    ),
    BadVariant(
        "next_to_missing_state",
        f"{SPEC}#transition: Next MUST exactly and case-sensitively match the name of another state",
        _set(SHOP_CLOSED, "Next", "Emit - Shop Unavailable"),
        caught_by=("statelint",),
    ),
    BadVariant(
        "end_and_next",
        f"{SPEC}#transition: a non-terminal state has Next, a terminal one End: true, never both",
        _set(SHOP_CLOSED, "End", True),
        caught_by=("statelint", "static_analysis"),
    ),
    BadVariant(
        "next_on_fail_state",
        f"{SPEC}#fail-state: a Fail state is terminal and has no Next",
        _set(ORDER_FAILED, "Next", SHOP_CLOSED),
        caught_by=("statelint",),
    ),
    BadVariant(
        "payload_field_not_a_path",
        f"{SPEC}#payload-template: a field ending in '.$' MUST have a Path as its value",
        _detail_field_not_a_path,
        caught_by=("statelint",),
    ),
)
