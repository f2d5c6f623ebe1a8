"""Where an operator command acts: a deployed stack (a samconfig.toml environment) or `make local`.

Both give the same `Target`: AWS clients, the bus, the stack's dead-letter queues (every SQS queue the
template declares is one: the rules' DLQs and the functions' on-failure queue), the tables and, when
deployed, the reconciler function's name. A deployed stack's names come from CloudFormation (its
resources), `make local`'s from template.yaml, resolved as the local engine names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError

from local.template import DEFAULT_STACK_NAME, Template
from ops.stack import OperatorError, default_session, locate_stack, stack_outputs

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DEFAULT_LOCAL_ENDPOINT = "http://127.0.0.1:4566"  # make local's AWS endpoint
LOCAL_REGION = "us-east-1"
SERVICES = ("sqs", "events", "dynamodb", "stepfunctions", "lambda", "cloudformation")
QUEUE_TYPE = "AWS::SQS::Queue"


@dataclass(frozen=True)
class Target:
    """A stack the operator commands act on."""

    description: str
    clients: Mapping[str, Any]
    bus_name: str
    dead_letter_queues: Mapping[str, str]  # logical id -> queue URL
    tables: Mapping[str, str]  # logical id -> table name
    reconciler_function: str | None  # deployed: the function to invoke; local: None (run in-process)
    template: Template | None = None  # local: the template the stack was provisioned from
    endpoint_url: str | None = None  # local: the AWS endpoint (None: in-process moto)


def local_target(endpoint_url: str = DEFAULT_LOCAL_ENDPOINT, template_path: Path = TEMPLATE) -> Target:
    """`make local` (or any moto server the local engine provisioned) at `endpoint_url`."""
    template = Template.load(template_path, stack_name=DEFAULT_STACK_NAME)
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=LOCAL_REGION
    )
    clients = {service: session.client(service, endpoint_url=endpoint_url) for service in SERVICES}
    return local_target_with(clients, template, f"local stack at {endpoint_url}", endpoint_url)


def local_target_with(
    clients: Mapping[str, Any], template: Template, description: str, endpoint_url: str | None = None
) -> Target:
    """A local stack reached through `clients` (e.g. an in-process engine's), named from `template`."""
    queues = {}
    for logical_id in template.resources(QUEUE_TYPE):
        name = template.physical_name(logical_id)
        try:
            queues[logical_id] = clients["sqs"].get_queue_url(QueueName=name)["QueueUrl"]
        except (clients["sqs"].exceptions.QueueDoesNotExist, EndpointConnectionError):
            raise OperatorError(
                f"queue {name} not found at {description}: is `make local` running?"
            ) from None
    buses = list(template.resources("AWS::Events::EventBus"))
    if len(buses) != 1:
        raise OperatorError(f"the template has {len(buses)} event buses; expected one")
    tables = {lid: template.physical_name(lid) for lid in template.resources("AWS::DynamoDB::Table")}
    bus = template.physical_name(buses[0])
    return Target(description, clients, bus, queues, tables, None, template, endpoint_url)


def deployed_target(environment: str, session: boto3.Session | None = None) -> Target:
    """The stack of a samconfig.toml environment (ENV=dev|prod), found in CloudFormation after the
    pre-flight every operator command shares (ops/stack.py: environment, region, credentials)."""
    session = session or default_session()
    where = locate_stack(environment, session)
    clients = {service: session.client(service, region_name=where.region) for service in SERVICES}
    resources: dict[str, tuple[str, str]] = {}
    stack_outputs(clients["cloudformation"], where)  # a missing or failed stack is named, with what to do
    paginator = clients["cloudformation"].get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=where.stack_name):
        for resource in page["StackResourceSummaries"]:
            resources[resource["LogicalResourceId"]] = (
                resource["ResourceType"],
                resource.get("PhysicalResourceId", ""),
            )
    queues = {lid: physical for lid, (kind, physical) in resources.items() if kind == QUEUE_TYPE}
    buses = [physical for kind, physical in resources.values() if kind == "AWS::Events::EventBus"]
    if len(buses) != 1:
        raise OperatorError(f"stack {where.stack_name} has {len(buses)} event buses; expected one")
    tables = {lid: physical for lid, (kind, physical) in resources.items() if kind == "AWS::DynamoDB::Table"}
    reconciler = resources.get("ReconcilerFunction", ("", ""))[1] or None
    description = f"stack {where.stack_name} ({where.region})"
    return Target(description, clients, buses[0], queues, tables, reconciler)
