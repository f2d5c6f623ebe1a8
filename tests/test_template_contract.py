"""Contract between template.yaml, the ASL and the workshop seed: checked statically, no AWS calls.

What a deploy would only reveal at run time (a placeholder nobody substitutes, a transition to a
state that does not exist, an event no rule routes, a missing permission) fails here instead.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.template import Template
from tests.asl_validator import PLACEHOLDER, deployed_definition
from tests.template_tables import ROOT, load_template

SEED_PATH = Path(__file__).parent / "data" / "seed_callback_states.json"
STATE_MACHINE = "OrderProcessorStateMachine"

# IAM actions that only accept Resource "*" and that the template may therefore grant on "*":
# the CloudWatch Logs delivery actions Step Functions needs to write execution logs.
LOGS_DELIVERY_ACTIONS = frozenset(
    {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="module")
def state_machine(template: Template) -> dict[str, Any]:
    return template.properties(STATE_MACHINE)


@pytest.fixture(scope="module")
def asl_text(state_machine: dict[str, Any]) -> str:
    return (ROOT / str(state_machine["DefinitionUri"])).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def asl(asl_text: str) -> dict[str, Any]:
    """The definition as written, placeholders still in place."""
    definition: dict[str, Any] = json.loads(asl_text)
    return definition


@pytest.fixture(scope="module")
def deployed_asl(template: Template) -> dict[str, Any]:
    """The definition as Step Functions would receive it with the default parameters."""
    return deployed_definition(template, STATE_MACHINE)


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SEED_PATH.read_text(encoding="utf-8"))
    return data


# -------------------------------------------------------------------------------------- helpers
def scopes(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The top-level state machine and every nested one (Parallel branches, Map processors)."""
    yield definition
    for state in definition["States"].values():
        for branch in state.get("Branches", []):
            yield from scopes(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from scopes(state[key])


def transitions(state: dict[str, Any]) -> list[str]:
    """Every state name a state can go to next."""
    targets = [state["Next"]] if "Next" in state else []
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [state["Default"]] if "Default" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def serverless_resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    """Properties (Globals merged) of every resource of a type."""
    return {logical_id: template.properties(logical_id) for logical_id in template.resources(kind)}


def rule_owners(template: Template) -> dict[str, dict[str, Any]]:
    """Properties of every SAM function and state machine: the resources that can have rules."""
    return {
        **serverless_resources(template, "AWS::Serverless::Function"),
        **serverless_resources(template, "AWS::Serverless::StateMachine"),
    }


def event_rules(properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The EventBridgeRule events of a SAM function or state machine."""
    return {
        name: event["Properties"]
        for name, event in properties.get("Events", {}).items()
        if event.get("Type") == "EventBridgeRule"
    }


def iam_statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner logical id, statement) for every inline IAM statement in the template."""
    for logical_id, resource in template.resources().items():
        properties = template.properties(logical_id)
        documents: list[Any] = []
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            documents = [policy for policy in properties.get("Policies", []) if isinstance(policy, dict)]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        for document in documents:
            for statement in document.get("Statement", []):
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------- substitutions & ASL
def test_the_asl_placeholders_and_the_definition_substitutions_are_the_same_set(
    asl_text: str, state_machine: dict[str, Any]
) -> None:
    # Given the ASL's ${...} placeholders and the template's DefinitionSubstitutions
    placeholders = set(PLACEHOLDER.findall(asl_text))
    substitutions = set(state_machine["DefinitionSubstitutions"])

    # Then every placeholder is substituted and every substitution is used
    assert placeholders == substitutions


def test_the_definition_uri_points_at_the_asl_file(state_machine: dict[str, Any]) -> None:
    assert (ROOT / state_machine["DefinitionUri"]).is_file()


def test_the_state_machine_is_a_standard_workflow_named_order_processor_workflow(
    template: Template, state_machine: dict[str, Any]
) -> None:
    # .waitForTaskToken exists only in Standard workflows
    assert state_machine["Type"] == "STANDARD"
    assert template.resolve(state_machine["Name"]).endswith("OrderProcessorWorkflow")


def test_every_transition_targets_a_state_of_the_same_scope(asl: dict[str, Any]) -> None:
    for scope in scopes(asl):
        names = set(scope["States"])
        assert scope["StartAt"] in names
        for name, state in scope["States"].items():
            missing = set(transitions(state)) - names
            assert not missing, f"{name!r} goes to unknown state(s) {sorted(missing)}"


def test_every_state_is_reachable_from_start_at(asl: dict[str, Any]) -> None:
    for scope in scopes(asl):
        reached, frontier = set(), [scope["StartAt"]]
        while frontier:
            name = frontier.pop()
            if name not in reached:
                reached.add(name)
                frontier.extend(transitions(scope["States"][name]))
        assert set(scope["States"]) - reached == set()


def test_every_state_either_ends_or_goes_on_never_both(asl: dict[str, Any]) -> None:
    for scope in scopes(asl):
        for name, state in scope["States"].items():
            if state["Type"] in ("Choice", "Succeed", "Fail"):
                assert "Next" not in state and "End" not in state, name
            else:
                assert ("Next" in state) != (state.get("End") is True), name


# ------------------------------------------------------------------------------------ the seed
@pytest.mark.parametrize("state_name", ["Emit - Workflow Started TT", "Emit - Awaiting Completion TT"])
def test_the_callback_states_match_the_workshop_seed_field_for_field(
    state_name: str, deployed_asl: dict[str, Any], seed: dict[str, Any]
) -> None:
    # Given the seed's callback state and ours as deployed with the default parameters
    expected = seed["callback_states"][state_name]
    state = deployed_asl["States"][state_name]

    # Then the event it emits is the seed's: same Detail (Message verbatim, token, ids), same
    # DetailType, Source, and the bus name the EventBusName parameter defaults to
    assert state["Resource"] == expected["Resource"]
    assert state["Parameters"] == expected["Parameters"]
    # And it waits and keeps its result as the seed says
    assert state["HeartbeatSeconds"] == expected["HeartbeatSeconds"]
    assert state["ResultPath"] == expected["ResultPath"]
    # And a timeout goes to the seed's Pass state with the seed's ResultPath
    timeout_catchers = [c for c in state["Catch"] if "States.Timeout" in c["ErrorEquals"]]
    assert timeout_catchers == [expected["TimeoutCatcher"]]


@pytest.mark.parametrize("state_name", ["Customer timedout", "Barista timedout"])
def test_the_timeout_pass_states_match_the_seed(
    state_name: str, asl: dict[str, Any], seed: dict[str, Any]
) -> None:
    state = asl["States"][state_name]
    expected = seed["timeout_states"][state_name]
    assert {key: state[key] for key in expected} == expected


def test_the_callback_states_sit_where_the_seed_puts_them(asl: dict[str, Any], seed: dict[str, Any]) -> None:
    # Given the seed's order of states
    order = seed["order"]

    # Then each one's Next is the following one
    assert [asl["States"][name]["Next"] for name in order[:-1]] == order[1:]


# ----------------------------------------------------------------------------------- event routing
def test_every_event_the_workflow_emits_is_routed_to_a_consumer(
    template: Template, deployed_asl: dict[str, Any]
) -> None:
    # Given the (source, detail-type) pairs the ASL puts on the bus, and the rules' patterns
    emitted = {
        (entry["Source"], entry["DetailType"], entry["EventBusName"])
        for state in deployed_asl["States"].values()
        if str(state.get("Resource", "")).startswith("arn:aws:states:::events:putEvents")
        for entry in state["Parameters"]["Entries"]
    }
    routed = {
        (source, detail_type, template.resolve(rule["EventBusName"]))
        for function in serverless_resources(template, "AWS::Serverless::Function").values()
        for rule in event_rules(function).values()
        for source in rule["Pattern"]["source"]
        for detail_type in rule["Pattern"]["detail-type"]
    }

    # Then nothing the workflow emits goes unheard (an unrouted callback event would only end
    # at the heartbeat timeout)
    assert emitted, "the ASL emits no events"
    assert emitted - routed == set()


def test_new_orders_start_the_workflow_from_the_order_bus(
    template: Template, state_machine: dict[str, Any]
) -> None:
    (rule,) = event_rules(state_machine).values()
    assert rule["Pattern"] == {
        "source": ["awsserverlessda.serverlesspresso"],
        "detail-type": ["Validator.NewOrder"],
    }
    assert template.resolve(rule["EventBusName"]) == template.resolve(
        template.properties("OrderEventBus")["Name"]
    )


def test_the_workflow_and_its_handlers_are_triggered_by_rules_on_the_order_bus(template: Template) -> None:
    bus = template.physical_name("OrderEventBus")
    for owner in (
        STATE_MACHINE,
        "WorkflowStartedFunction",
        "WaitingCompletionFunction",
        "OrderEndedFunction",
    ):
        rules = event_rules(template.properties(owner))
        assert rules, f"{owner} has no EventBridgeRule event"
        assert {template.resolve(rule["EventBusName"]) for rule in rules.values()} == {bus}, owner


def test_every_rule_retries_and_has_a_dead_letter_queue_in_the_template(template: Template) -> None:
    # Given every EventBridgeRule event of every SAM function and state machine
    owners = rule_owners(template)
    queues = template.resources("AWS::SQS::Queue")
    rules = [
        (owner, name, rule) for owner, props in owners.items() for name, rule in event_rules(props).items()
    ]
    assert rules

    for owner, name, rule in rules:
        # Then each retries delivery and parks what it cannot deliver in a queue of this template
        retry = rule["RetryPolicy"]
        assert retry["MaximumRetryAttempts"] > 0, (owner, name)
        assert retry["MaximumEventAgeInSeconds"] >= 60, (owner, name)
        dead_letter = rule["DeadLetterConfig"]
        if "Arn" in dead_letter:
            assert dead_letter["Arn"]["Fn::GetAtt"][0] in queues, (owner, name)
        else:
            assert dead_letter["Type"] == "SQS", (owner, name)


def test_every_dead_letter_queue_has_an_alarm(template: Template) -> None:
    # Given the queues that collect undelivered events (rule DLQs) and failed ones (on-failure
    # destinations of asynchronous invocations)
    owners = rule_owners(template)
    references = [
        rule.get("DeadLetterConfig", {}).get("Arn")
        for props in owners.values()
        for rule in event_rules(props).values()
    ]
    references += [
        props.get("EventInvokeConfig", {})
        .get("DestinationConfig", {})
        .get("OnFailure", {})
        .get("Destination")
        for props in owners.values()
    ]
    queues = {ref["Fn::GetAtt"][0] for ref in references if isinstance(ref, dict) and "Fn::GetAtt" in ref}
    assert {"NewOrderDLQ", "HandlerFailureQueue"} <= queues
    watched = {
        dimension["Value"]["Fn::GetAtt"][0]
        for logical_id in template.resources("AWS::CloudWatch::Alarm")
        for dimension in template.properties(logical_id)["Dimensions"]
        if dimension["Name"] == "QueueName"
    }

    # Then an alarm fires as soon as any of them holds a message
    assert queues - watched == set()


# ------------------------------------------------------------------------------------------ code
def test_every_function_handler_exists(template: Template) -> None:
    functions = serverless_resources(template, "AWS::Serverless::Function")
    assert set(functions) >= {"WorkflowStartedFunction", "WaitingCompletionFunction", "OrderEndedFunction"}
    for logical_id, properties in functions.items():
        # Given the function's CodeUri and Handler (module.function)
        module, function_name = properties["Handler"].rsplit(".", 1)
        source = ROOT / properties["CodeUri"] / f"{module.replace('.', '/')}.py"
        assert source.is_file(), f"{logical_id}: {source} is missing"

        # Then the module defines that name at top level (parsed, not imported)
        tree = ast.parse(source.read_text(encoding="utf-8"))
        defined = {
            node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        defined |= {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert function_name in defined, f"{logical_id}: {source} defines no {function_name}"


def test_the_shared_layer_is_built_from_the_shared_package(template: Template) -> None:
    (layer_id,) = template.resources("AWS::Serverless::LayerVersion")
    layer = template.properties(layer_id)
    assert (ROOT / layer["ContentUri"] / "serverlesspresso" / "__init__.py").is_file()
    assert template.resource(layer_id)["Metadata"]["BuildMethod"] == "python3.13"


# ------------------------------------------------------------------------------------------- IAM
def test_no_statement_grants_on_every_resource_except_log_delivery(template: Template) -> None:
    offenders = [
        (owner, statement.get("Sid"))
        for owner, statement in iam_statements(template)
        if "*" in as_list(statement["Resource"])
        and not set(as_list(statement["Action"])) <= LOGS_DELIVERY_ACTIONS
    ]
    assert offenders == []


def test_no_statement_uses_wildcard_actions(template: Template) -> None:
    wildcards = [
        (owner, action)
        for owner, statement in iam_statements(template)
        for action in as_list(statement["Action"])
        if "*" in action
    ]
    assert wildcards == []


def test_the_state_machine_role_allows_every_call_the_asl_makes(
    template: Template, state_machine: dict[str, Any], deployed_asl: dict[str, Any]
) -> None:
    # Given what the role grants: (action, resource ARN) pairs
    granted = {
        (action, resource)
        for owner, statement in iam_statements(template)
        if owner == STATE_MACHINE and statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        for resource in as_list(template.resolve(statement["Resource"]))
    }
    tables = {template.physical_name(t): template.arn(t) for t in template.resources("AWS::DynamoDB::Table")}
    buses = {template.physical_name(b): template.arn(b) for b in template.resources("AWS::Events::EventBus")}

    # When every service-integration task of the deployed ASL is mapped to the IAM call it makes
    needed = set()
    for scope in scopes(deployed_asl):
        for state in scope["States"].values():
            resource = state.get("Resource", "")
            if resource.startswith("arn:aws:states:::dynamodb:"):
                api = resource.rsplit(":", 1)[1]
                needed.add((f"dynamodb:{api[0].upper()}{api[1:]}", tables[state["Parameters"]["TableName"]]))
            elif resource.startswith("arn:aws:states:::events:putEvents"):
                for entry in state["Parameters"]["Entries"]:
                    needed.add(("events:PutEvents", buses[entry["EventBusName"]]))
            else:
                assert not resource, f"unexpected task resource {resource}: extend this test"

    # Then the role allows each of them (and the ASL makes at least the calls we know about)
    assert needed >= {("dynamodb:UpdateItem", tables[template.physical_name("CountersTable")])}
    assert needed - granted == set()
