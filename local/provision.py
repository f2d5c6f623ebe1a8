"""Creates the template's resources in moto: tables, queues, buses, state machines and rules.

Everything is derived from template.yaml, so a table, function or rule added there needs no change
here. Rules keep the template's patterns and moto does the matching; because moto cannot deliver to
Lambda or Step Functions targets, every such target becomes an SQS queue (one per rule target) that
the dispatcher (local/dispatch.py) drains into the real handler or into StartExecution.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from boto3.dynamodb.types import TypeSerializer

from local.lambdas import FUNCTION_TYPES, FunctionSpec, function_specs
from local.seed import seed_items
from local.template import Template, TemplateError
from local.timescale import scale_definition

TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
QUEUE_TYPES = ("AWS::SQS::Queue",)
BUS_TYPES = ("AWS::Events::EventBus",)
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
RULE_TYPES = ("AWS::Events::Rule",)
SAM_RULE_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent")

CAPTURE_RULE = "local-capture-all"
# Matches every event: each event has a source, and every string has the empty prefix.
CAPTURE_PATTERN = {"source": [{"prefix": ""}]}
UNDELIVERABLE_QUEUE = "local-undeliverable"
DEFAULT_RULE_RETRIES = 185  # EventBridge's default RetryPolicy.MaximumRetryAttempts
DEFAULT_ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations

TargetKind = Literal["function", "state_machine"]


@dataclass(frozen=True)
class Route:
    """One rule target the dispatcher serves: a queue moto fills, and where its events go."""

    rule_name: str
    rule_arn: str
    bus_name: str
    target_kind: TargetKind
    target: str  # logical id of the function or state machine
    target_arn: str
    queue_url: str
    max_attempts: int
    failure_queue_url: str  # where an event goes once its attempts are used up
    input: str | None = None  # the target's constant Input (JSON text), if any
    input_path: str | None = None


@dataclass
class Provisioned:
    """Names and ARNs of what was created, keyed by logical id."""

    table_names: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)
    bus_names: dict[str, str] = field(default_factory=dict)
    state_machine_arns: dict[str, str] = field(default_factory=dict)
    rule_names: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    capture_queue_url: str = ""
    undeliverable_queue_url: str = ""
    skipped: list[str] = field(default_factory=list)  # template parts the engine cannot run, and why


@dataclass(frozen=True)
class _RuleSpec:
    name: str
    bus_name: str
    pattern: dict[str, Any]
    target_kind: TargetKind | Literal["queue"]
    target: str
    target_props: Mapping[str, Any]


def provision(
    template: Template,
    clients: Mapping[str, Any],
    *,
    time_scale: float = 1.0,
    function_env: Mapping[str, str] | None = None,
) -> Provisioned:
    """Create every supported resource of the template through the given boto3 clients."""
    out = Provisioned()
    for logical_id in template.resources(*TABLE_TYPES):
        out.table_names[logical_id] = _create_table(template, clients["dynamodb"], logical_id)
    queue_arns = _create_queues(template, clients["sqs"], out)
    for logical_id in template.resources(*BUS_TYPES):
        name = template.physical_name(logical_id)
        if name != "default":
            clients["events"].create_event_bus(Name=name)
        out.bus_names[logical_id] = name
    for logical_id in template.resources(*STATE_MACHINE_TYPES):
        out.state_machine_arns[logical_id] = _create_state_machine(
            template, clients["stepfunctions"], logical_id, time_scale
        )
    out.functions = function_specs(template, function_env or {})
    out.undeliverable_queue_url = _queue(clients["sqs"], UNDELIVERABLE_QUEUE)[0]
    for spec in _rule_specs(template, out):
        _create_rule(template, clients, spec, queue_arns, out)
    _create_capture(clients, out)
    serializer = TypeSerializer()
    for seed in seed_items(template):
        item = {key: serializer.serialize(value) for key, value in seed.item.items()}
        clients["dynamodb"].put_item(TableName=out.table_names[seed.table], Item=item)
    return out


# ------------------------------------------------------------------------------------------ tables
def _create_table(template: Template, dynamodb: Any, logical_id: str) -> str:
    name = template.physical_name(logical_id)
    props = template.resolve(template.properties(logical_id))
    if template.resource(logical_id)["Type"] == "AWS::Serverless::SimpleTable":
        key = props.get("PrimaryKey", {"Name": "id", "Type": "String"})
        key_type = {"String": "S", "Number": "N", "Binary": "B"}[key["Type"]]
        props = {
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": key_type}],
            "BillingMode": "PROVISIONED" if "ProvisionedThroughput" in props else "PAY_PER_REQUEST",
            **props,
        }
    billing = props.get("BillingMode", "PROVISIONED")
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": billing,
    }
    throughput = _throughput(props.get("ProvisionedThroughput"))
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = throughput
    indexes = [
        {
            "IndexName": index["IndexName"],
            "KeySchema": index["KeySchema"],
            "Projection": index["Projection"],
            **(
                {"ProvisionedThroughput": _throughput(index.get("ProvisionedThroughput"))}
                if billing == "PROVISIONED"
                else {}
            ),
        }
        for index in props.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    local_indexes = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in props.get("LocalSecondaryIndexes", [])
    ]
    if local_indexes:
        request["LocalSecondaryIndexes"] = local_indexes
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    dynamodb.create_table(**request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled") in (True, "true"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return name


def _throughput(spec: Mapping[str, Any] | None) -> dict[str, int]:
    spec = spec or {}
    return {
        "ReadCapacityUnits": int(spec.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(spec.get("WriteCapacityUnits", 5)),
    }


# ------------------------------------------------------------------------------------------ queues
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "SqsManagedSseEnabled",
)


def _create_queues(template: Template, sqs: Any, out: Provisioned) -> dict[str, str]:
    """Create the template's queues (redrive targets first); return {queue ARN: queue URL}."""
    queues = template.resources(*QUEUE_TYPES)
    ordered = sorted(queues, key=lambda lid: "RedrivePolicy" in queues[lid].get("Properties", {}))
    arns: dict[str, str] = {}
    for logical_id in ordered:
        props = template.resolve(template.properties(logical_id))
        attributes = {key: _attribute(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url, arn = _queue(sqs, template.physical_name(logical_id), attributes)
        out.queue_urls[logical_id] = url
        arns[arn] = url
    return arns


def _attribute(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _queue(sqs: Any, name: str, attributes: Mapping[str, str] | None = None) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=dict(attributes or {}))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _queue_name(*parts: str) -> str:
    # SQS: up to 80 characters, alphanumerics, hyphens and underscores.
    return re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(("local", *parts)))[:80]


# ---------------------------------------------------------------------------------- state machines
def _create_state_machine(template: Template, sfn: Any, logical_id: str, time_scale: float) -> str:
    props = template.properties(logical_id)
    name = template.physical_name(logical_id)
    if "DefinitionUri" in props:
        uri = template.resolve(props["DefinitionUri"])
        if not isinstance(uri, str):
            raise TemplateError(f"{logical_id}: only a local DefinitionUri path is supported")
        text = (template.root / uri).read_text(encoding="utf-8")
    elif "DefinitionString" in props:
        text = str(template.resolve(props["DefinitionString"]))
    elif "Definition" in props:
        text = json.dumps(template.resolve(props["Definition"]))
    else:
        raise TemplateError(f"{logical_id}: no Definition, DefinitionString or DefinitionUri")
    # DefinitionSubstitutions are textual, before parsing (a placeholder may stand for a number).
    for key, value in template.resolve(props.get("DefinitionSubstitutions", {})).items():
        text = text.replace("${" + key + "}", _substitution(value))
    definition = scale_definition(json.loads(text), time_scale)
    machine_type = template.resolve(props.get("Type", props.get("StateMachineType", "STANDARD")))
    arn: str = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{template.account_id}:role/{name}-local"[:2048],
        type=machine_type,
    )["stateMachineArn"]
    return arn


def _substitution(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value)


# ------------------------------------------------------------------------------------------- rules
def _rule_specs(template: Template, out: Provisioned) -> Iterator[_RuleSpec]:
    """Every EventBridge rule the template declares, as (rule, pattern, one target) triples."""
    sam_sources = {**template.resources(*FUNCTION_TYPES), **template.resources(*STATE_MACHINE_TYPES)}
    for logical_id, resource in sam_sources.items():
        kind: TargetKind = "function" if resource["Type"] in FUNCTION_TYPES else "state_machine"
        for event_name, event in template.properties(logical_id).get("Events", {}).items():
            if event.get("Type") not in SAM_RULE_EVENT_TYPES:
                continue  # API, schedule, queue... events are not EventBridge-pattern deliveries
            props = template.resolve(event.get("Properties", {}))
            if props.get("State") == "DISABLED" or "Pattern" not in props:
                out.skipped.append(f"{logical_id}.{event_name}: disabled or without Pattern")
                continue
            name = props.get("RuleName") or f"{template.stack_name}-{logical_id}-{event_name}"[:64]
            yield _RuleSpec(
                name, props.get("EventBusName", "default"), props["Pattern"], kind, logical_id, props
            )

    targets_by_arn: dict[str, tuple[TargetKind | Literal["queue"], str]] = {}
    for logical_id in template.resources(*FUNCTION_TYPES):
        targets_by_arn[template.arn(logical_id)] = ("function", logical_id)
    for logical_id in template.resources(*STATE_MACHINE_TYPES):
        targets_by_arn[template.arn(logical_id)] = ("state_machine", logical_id)
    for logical_id in template.resources(*QUEUE_TYPES):
        targets_by_arn[template.arn(logical_id)] = ("queue", logical_id)
    for logical_id in template.resources(*RULE_TYPES):
        props = template.resolve(template.properties(logical_id))
        if props.get("State") == "DISABLED" or "EventPattern" not in props:
            out.skipped.append(f"{logical_id}: disabled or schedule-only rule")
            continue
        for target in props.get("Targets", []):
            kind_and_id = targets_by_arn.get(target["Arn"])
            if kind_and_id is None:
                out.skipped.append(
                    f"{logical_id}: target {target['Arn']} is not a function, state machine or queue here"
                )
                continue
            pattern = props["EventPattern"]
            pattern = json.loads(pattern) if isinstance(pattern, str) else pattern
            name = template.physical_name(logical_id)
            yield _RuleSpec(
                name, props.get("EventBusName", "default"), pattern, kind_and_id[0], kind_and_id[1], target
            )


def _create_rule(
    template: Template,
    clients: Mapping[str, Any],
    spec: _RuleSpec,
    queue_arns: dict[str, str],
    out: Provisioned,
) -> None:
    events, sqs = clients["events"], clients["sqs"]
    if spec.name not in out.rule_names:
        events.put_rule(
            Name=spec.name, EventBusName=spec.bus_name, EventPattern=json.dumps(spec.pattern), State="ENABLED"
        )
        out.rule_names.append(spec.name)
    target_id = str(spec.target_props.get("Id", spec.target))[:64]
    transformer = (
        {"InputTransformer": spec.target_props["InputTransformer"]}
        if "InputTransformer" in spec.target_props
        else {}
    )
    if spec.target_kind == "queue":  # moto delivers to SQS itself: no dispatcher needed
        arn = template.arn(spec.target)
        events.put_targets(
            Rule=spec.name, EventBusName=spec.bus_name, Targets=[{"Id": target_id, "Arn": arn, **transformer}]
        )
        return
    queue_url, queue_arn = _queue(sqs, _queue_name(spec.name, target_id), {"VisibilityTimeout": "30"})
    events.put_targets(
        Rule=spec.name,
        EventBusName=spec.bus_name,
        Targets=[{"Id": target_id, "Arn": queue_arn, **transformer}],
    )
    if spec.target_kind == "function":
        # A rule delivers to Lambda asynchronously; the handler's failures are Lambda's to retry
        # (EventInvokeConfig) and end in its on-failure destination.
        invoke_config = template.resolve(template.properties(spec.target).get("EventInvokeConfig", {}))
        retries = int(invoke_config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
        failure_arn = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        target_arn = template.arn(spec.target)
    else:
        # StartExecution failing is a delivery failure: the rule's RetryPolicy and DLQ apply.
        retries = int(
            spec.target_props.get("RetryPolicy", {}).get("MaximumRetryAttempts", DEFAULT_RULE_RETRIES)
        )
        failure_arn = spec.target_props.get("DeadLetterConfig", {}).get("Arn")
        target_arn = out.state_machine_arns[spec.target]
    failure_url = queue_arns.get(failure_arn or "", out.undeliverable_queue_url)
    out.routes.append(
        Route(
            rule_name=spec.name,
            rule_arn=_rule_arn(template, spec),
            bus_name=spec.bus_name,
            target_kind=spec.target_kind,
            target=spec.target,
            target_arn=target_arn,
            queue_url=queue_url,
            max_attempts=retries + 1,
            failure_queue_url=failure_url,
            input=spec.target_props.get("Input"),
            input_path=spec.target_props.get("InputPath"),
        )
    )


def _rule_arn(template: Template, spec: _RuleSpec) -> str:
    path = spec.name if spec.bus_name == "default" else f"{spec.bus_name}/{spec.name}"
    return f"arn:aws:events:{template.region}:{template.account_id}:rule/{path}"


def _create_capture(clients: Mapping[str, Any], out: Provisioned) -> None:
    """One catch-all rule per bus, into one queue: the engine's record of every event put on a bus."""
    out.capture_queue_url, capture_arn = _queue(clients["sqs"], CAPTURE_RULE)
    buses = set(out.bus_names.values()) | {route.bus_name for route in out.routes}
    for bus in sorted(buses):
        clients["events"].put_rule(
            Name=CAPTURE_RULE, EventBusName=bus, EventPattern=json.dumps(CAPTURE_PATTERN)
        )
        clients["events"].put_targets(
            Rule=CAPTURE_RULE, EventBusName=bus, Targets=[{"Id": "capture", "Arn": capture_arn}]
        )
