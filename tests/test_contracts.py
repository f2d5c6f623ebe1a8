"""Contracts between the code, template.yaml and the README, checked against what really happens.

Events: every detail-type the workflow emits (the ASL's putEvents states) or the code publishes
(`publish_event` calls in functions/) is in the README's event catalogue, exactly; each is consumed by
a rule of template.yaml, as the catalogue says, or marked there as for outside consumers; and every
rule's pattern matches its sample event in events/ and no other sample. Patterns are matched by moto's
EventBridge engine (`moto.events.models.EventPattern`, what moto's rules deliver with): moto 5.2.5's
TestEventPattern API is a stub (its backend raises NotImplementedError, its response is empty).

Least privilege: tests/least_privilege.py records every AWS call the functions and the state machine
make on the local engine, and checks each against the principal's policy as SAM deploys it. Every
end-to-end test checks its own calls (tests/e2e/conftest.py); here, one order's life through every
principal shows the recorder sees each of them and the check would catch a missing permission.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto.events.models import EventPattern

from local.engine import LocalEngine
from local.template import Template
from serverlesspresso.models import OrderState
from serverlesspresso.orders import to_item
from serverlesspresso.resume import COMPLETE_ORDER, CUSTOMER_CANCEL, SUBMIT_ORDER
from tests.e2e.flows import Shop, wait_for
from tests.helpers import eventbridge_event_names, load_event
from tests.least_privilege import AwsCall, Policies, Statement, recording
from tests.template_tables import ROOT, TEMPLATE_PATH, load_template
from tests.test_template_contract import LOGS_DELIVERY_ACTIONS

README = ROOT / "README.md"
FUNCTIONS = ROOT / "functions"
OUTSIDE_CONSUMERS = "outside consumers"
PRINCIPAL_TYPES = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
# What SAM attaches to every function (CloudWatch Logs) and to anything with Tracing (X-Ray); both
# are AWS managed policies scoped by AWS. Any other managed policy must be argued for here.
SAM_DEFAULT_MANAGED_POLICIES = frozenset(
    {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    }
)


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="module")
def catalogue() -> dict[str, str]:
    """README "Event catalogue": {detail-type: consumers cell}."""
    section = README.read_text(encoding="utf-8").split("## Event catalogue", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return {cell[0].strip("`"): cell[2] for cell in cells}


@pytest.fixture(scope="module")
def rules(template: Template) -> dict[str, dict[str, Any]]:
    """Every EventBridge rule of the template: {name: {"pattern": ..., "target": logical id}}."""
    found: dict[str, dict[str, Any]] = {}
    for owner in template.resources(*PRINCIPAL_TYPES):
        for event_name, event in template.properties(owner).get("Events", {}).items():
            if event.get("Type") in ("EventBridgeRule", "CloudWatchEvent"):
                props = template.resolve(event["Properties"])
                found[f"{owner}.{event_name}"] = {"pattern": props["Pattern"], "target": owner}
    for rule_id in template.resources("AWS::Events::Rule"):
        props = template.resolve(template.properties(rule_id))
        pattern = props["EventPattern"]
        for target in props.get("Targets", []):
            found[f"{rule_id}.{target['Id']}"] = {
                "pattern": json.loads(pattern) if isinstance(pattern, str) else pattern,
                "target": target["Arn"],
            }
    return found


@pytest.fixture(scope="module")
def samples() -> dict[str, dict[str, Any]]:
    """The EventBridge sample events in events/, by file name."""
    return {name: load_event(name) for name in eventbridge_event_names()}


# ----------------------------------------------------------------------------------- helpers
def emitted_by_the_workflow(template: Template) -> set[str]:
    """DetailTypes of every putEvents state of every state machine's definition."""
    detail_types: set[str] = set()
    for logical_id in template.resources("AWS::Serverless::StateMachine"):
        definition = json.loads((ROOT / template.properties(logical_id)["DefinitionUri"]).read_text())
        for state in _states(definition):
            if str(state.get("Resource", "")).startswith("arn:aws:states:::events:putEvents"):
                detail_types |= {entry["DetailType"] for entry in state["Parameters"]["Entries"]}
    return detail_types


def _states(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in definition["States"].values():
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _states(state[key])


def published_by_the_code() -> dict[str, set[str]]:
    """{detail-type: files} for every `publish_event(<detail-type>, ...)` call under functions/.

    The first argument must be a string literal or a module-level string constant of the same module,
    so that this test can know it; anything else fails the test.
    """
    published: dict[str, set[str]] = {}
    for path in sorted(FUNCTIONS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            if _called_name(call) != "publish_event":
                continue
            first = call.args[0] if call.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                detail_type = first.value
            elif isinstance(first, ast.Name) and first.id in constants:
                detail_type = constants[first.id]
            else:
                raise AssertionError(f"{path}:{call.lineno}: publish_event's detail-type is not a constant")
            published.setdefault(detail_type, set()).add(str(path.relative_to(ROOT)))
    return published


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """moto's EventBridge matching of one event against one rule pattern."""
    matched: bool = EventPattern.load(json.dumps(pattern)).matches_event(event)  # type: ignore[arg-type]
    return matched


# ------------------------------------------------------------------------------ event catalogue
def test_the_code_publishes_events_only_through_publish_event() -> None:
    # Given every PutEvents call in the functions' code
    callers = sorted(
        str(path.relative_to(ROOT))
        for path in FUNCTIONS.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and _called_name(node) == "put_events"
    )

    # Then there is one, in the publisher, so published_by_the_code() sees every event the code puts
    assert callers == ["functions/shared/serverlesspresso/publisher.py"]


def test_every_event_emitted_or_published_is_in_the_readme_catalogue_and_nothing_else(
    template: Template, catalogue: dict[str, str]
) -> None:
    # Given what the workflow emits and what the code publishes
    emitted = emitted_by_the_workflow(template)
    published = published_by_the_code()
    assert "OrderManager.WaitingCompletion" in published  # tracking.BARISTA_QUEUE_EVENT
    assert "Validator.NewOrder" in published  # the API's POST /orders

    # Then the README catalogues exactly those detail-types
    assert set(catalogue) == emitted | set(published)


def test_every_catalogued_event_is_consumed_by_a_rule_as_the_readme_says_or_is_for_outside_consumers(
    template: Template,
    catalogue: dict[str, str],
    rules: dict[str, dict[str, Any]],
    samples: dict[str, dict[str, Any]],
) -> None:
    sample_of = {sample["detail-type"]: sample for sample in samples.values()}
    for detail_type, consumers in catalogue.items():
        # Given the rules whose pattern matches the event (its sample, else a minimal envelope)
        event = sample_of.get(detail_type) or {
            "source": "awsserverlessda.serverlesspresso",
            "detail-type": detail_type,
            "detail": {},
        }
        targets = {rule["target"] for rule in rules.values() if matches(rule["pattern"], event)}

        # Then an event for outside consumers needs none; any other is consumed, by the targets the
        # README names (by logical id, or by the name the template gives the resource)
        if OUTSIDE_CONSUMERS in consumers:
            continue
        assert targets, (
            f"{detail_type}: no rule consumes it and the README does not mark it for outside consumers"
        )
        for target in targets:
            names = {target, template.physical_name(target).removeprefix(f"{template.stack_name}-")}
            assert any(name in consumers for name in names), f"{detail_type}: README omits consumer {target}"
        assert detail_type in sample_of, f"{detail_type} is consumed by a rule but has no sample in events/"


def test_every_rule_pattern_matches_its_sample_events_and_no_other(
    rules: dict[str, dict[str, Any]], samples: dict[str, dict[str, Any]]
) -> None:
    assert rules
    for name, rule in rules.items():
        # Given the samples of the detail-types the rule names
        wanted = set(rule["pattern"]["detail-type"])
        own = {sample_name for sample_name, sample in samples.items() if sample["detail-type"] in wanted}
        assert {samples[sample_name]["detail-type"] for sample_name in own} == wanted, (
            f"{name}: a sample is missing"
        )

        # When moto matches every sample against the rule, Then it takes exactly its own
        taken = {sample_name for sample_name, sample in samples.items() if matches(rule["pattern"], sample)}
        assert taken == own, name


def test_the_pattern_matching_used_here_tells_events_apart() -> None:
    # Given a rule pattern of the template's shape
    pattern = {
        "source": ["awsserverlessda.serverlesspresso"],
        "detail-type": ["OrderProcessor.orderFinished"],
    }
    event = load_event("order_finished")

    # Then the same event from another source, or of another type, does not match
    assert matches(pattern, event)
    assert not matches(pattern, {**event, "source": "someone.else"})
    assert not matches(pattern, {**event, "detail-type": "OrderProcessor.OrderFinished"})  # case matters


# ----------------------------------------------------------------------------- least privilege
@pytest.fixture(scope="module")
def one_order_through_every_principal() -> Iterator[tuple[LocalEngine, list[AwsCall]]]:
    """A completed order, and an order started twice then cancelled, with every AWS call recorded."""
    with (
        LocalEngine.in_process(TEMPLATE_PATH, 0.05, start_dispatcher=False) as engine,
        recording(engine) as recorder,
    ):
        # A barista screen connected to the push channel (as $connect stores it), so the fan-out posts
        engine.clients["dynamodb"].put_item(
            TableName=engine.table_names["ConnectionsTable"],
            Item=to_item({"connectionId": "screen-1", "audience": "barista", "expiresAt": 1}),
        )
        engine.dispatcher.start()
        shop = Shop(engine)
        completed = shop.place_order(user_id="alice")
        shop.act_when(completed, OrderState.WAITING_FOR_CUSTOMER, SUBMIT_ORDER)
        shop.act_when(completed, OrderState.WAITING_FOR_BARISTA, COMPLETE_ORDER)
        shop.wait_for_end(completed)
        twice = shop.place_order(user_id="bob")
        engine.start_order(twice, "bob")  # a second execution: ended as a duplicate
        wait_for(lambda: len(shop.executions(twice)) == 2, "both executions")
        shop.act_when(twice, OrderState.WAITING_FOR_CUSTOMER, CUSTOMER_CANCEL)
        shop.wait_for_end(twice)
        wait_for(lambda: not shop.running(), "every execution ended")
        engine.dispatcher.drain()
        yield engine, recorder.calls()


@pytest.fixture(scope="module")
def policies(template: Template) -> Policies:
    return Policies.of(template)


def test_the_recorder_sees_every_principal_make_its_calls(
    one_order_through_every_principal: tuple[LocalEngine, list[AwsCall]],
) -> None:
    engine, calls = one_order_through_every_principal
    tables = {logical_id: engine.template.arn(logical_id) for logical_id in engine.table_names}
    bus = engine.template.arn("OrderEventBus")
    api, stage = engine.template.ref("PushApi"), engine.template.ref("PushStage")
    push_to_screen = f"arn:aws:execute-api:us-east-1:123456789012:{api}/{stage}/POST/@connections/screen-1"

    # Then the recorded (principal, action, resource) triples include every kind of call of an order's
    # life, attributed to the function or state machine that made it
    recorded = {(call.principal, call.action, call.resource) for call in calls}
    assert {
        ("OrderProcessorStateMachine", "dynamodb:GetItem", tables["ConfigTable"]),
        ("OrderProcessorStateMachine", "dynamodb:UpdateItem", tables["ConfigTable"]),
        ("OrderProcessorStateMachine", "dynamodb:UpdateItem", tables["CountersTable"]),
        ("OrderProcessorStateMachine", "events:PutEvents", bus),
        ("WorkflowStartedFunction", "dynamodb:UpdateItem", tables["OrdersTable"]),
        ("WorkflowStartedFunction", "states:SendTaskFailure", engine.state_machine_arn),  # the duplicate
        ("WaitingCompletionFunction", "dynamodb:UpdateItem", tables["OrdersTable"]),
        ("WaitingCompletionFunction", "events:PutEvents", bus),
        ("OrderEndedFunction", "dynamodb:UpdateItem", tables["OrdersTable"]),
        ("OrderEndedFunction", "events:PutEvents", bus),  # OrderManager.OrderChanged
        ("PushFanOutFunction", "dynamodb:GetItem", tables["OrdersTable"]),
        ("PushFanOutFunction", "dynamodb:Query", f"{tables['ConnectionsTable']}/index/ByAudience"),
        ("PushFanOutFunction", "execute-api:ManageConnections", push_to_screen),  # from its thread pool
    } <= recorded
    # And PutEvents is recorded with the condition keys IAM would see
    assert {
        (call.context["events:source"], call.context["events:detail-type"])
        for call in calls
        if call.principal == "WaitingCompletionFunction" and call.action == "events:PutEvents"
    } == {("awsserverlessda.serverlesspresso", "OrderManager.WaitingCompletion")}
    # And the test's own calls (placing orders, resuming waits as the API would) are nobody's
    assert {call.principal for call in calls} == {
        "OrderProcessorStateMachine",
        "WorkflowStartedFunction",
        "WaitingCompletionFunction",
        "OrderEndedFunction",
        "PushFanOutFunction",
    }


def test_every_call_of_those_orders_is_allowed_by_its_principals_policy(
    one_order_through_every_principal: tuple[LocalEngine, list[AwsCall]], policies: Policies
) -> None:
    _, calls = one_order_through_every_principal
    assert policies.denials(calls) == []


def test_a_permission_the_policy_lacks_fails_the_check(
    one_order_through_every_principal: tuple[LocalEngine, list[AwsCall]], policies: Policies
) -> None:
    engine, calls = one_order_through_every_principal
    # Given the deployed policies without the statement that lets WorkflowStartedFunction end duplicates
    narrower = policies.without("WorkflowStartedFunction", "EndDuplicateExecutions")

    # Then the recorded calls are refused exactly there
    assert narrower.denials(calls) == [
        f"WorkflowStartedFunction: states:SendTaskFailure on {engine.state_machine_arn}"
    ]


def test_the_check_reads_resources_and_conditions_as_iam_does(policies: Policies, template: Template) -> None:
    orders = template.arn("OrdersTable")
    bus = template.arn("OrderEventBus")
    # A grant on a table does not cover its indexes
    assert policies.allows(AwsCall("OrderEndedFunction", "dynamodb:UpdateItem", orders))
    assert not policies.allows(AwsCall("OrderEndedFunction", "dynamodb:Query", f"{orders}/index/ByState"))
    # Nor a principal another's grant
    assert not policies.allows(AwsCall("OrderEndedFunction", "events:PutEvents", bus))
    # A condition holds only for the values it names, and only when the request carries the key
    only_new_orders = Policies(
        {
            "P": (
                Statement(
                    "Allow",
                    ("events:PutEvents",),
                    (bus,),
                    condition={"StringEquals": {"events:detail-type": "Validator.NewOrder"}},
                ),
            )
        },
        {},
        "test",
    )
    assert only_new_orders.allows(
        AwsCall("P", "events:PutEvents", bus, {"events:detail-type": "Validator.NewOrder"})
    )
    assert not only_new_orders.allows(
        AwsCall("P", "events:PutEvents", bus, {"events:detail-type": "OrderProcessor.orderFinished"})
    )
    assert not only_new_orders.allows(AwsCall("P", "events:PutEvents", bus))
    # An explicit Deny wins over an Allow
    denied = Policies(
        {"P": (Statement("Allow", ("events:*",), ("*",)), Statement("Deny", ("events:PutEvents",), (bus,)))},
        {},
        "test",
    )
    assert not denied.allows(AwsCall("P", "events:PutEvents", bus))


def test_the_policies_are_those_sam_deploys_for_every_function_and_state_machine(
    template: Template, policies: Policies
) -> None:
    # Expanded by the SAM translator (.venv-tools), so generated policies count too
    assert policies.source == "SAM translator"
    assert set(policies.statements) == set(template.resources(*PRINCIPAL_TYPES))
    # e.g. the on-failure destination SAM adds for every function (Globals EventInvokeConfig)
    queue = template.arn("HandlerFailureQueue")
    assert policies.allows(AwsCall("OrderEndedFunction", "sqs:SendMessage", queue))


def test_no_policy_grants_every_resource_except_the_documented_log_delivery(
    template: Template, policies: Policies
) -> None:
    # Given every Allow statement every function and state machine role gets once SAM expanded it
    offenders = [
        (principal, statement.sid, action)
        for principal, statements in policies.statements.items()
        for statement in statements
        if statement.effect == "Allow" and "*" in statement.resources
        for action in statement.actions
        if action not in LOGS_DELIVERY_ACTIONS
    ]
    # Then only the log delivery actions (which support no resource-level permission) use "*"
    assert offenders == []
    # And the only managed policies are SAM's defaults for logging and tracing
    managed = {arn for arns in policies.managed_policy_arns.values() for arn in arns}
    assert managed <= SAM_DEFAULT_MANAGED_POLICIES
