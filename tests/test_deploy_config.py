"""What a deploy needs that no linter checks: read from template.yaml and samconfig.toml, no AWS calls.

Each test names the deploy defect it guards against (issue 12's findings): alarms that could not be
delivered, environments that collide in one account, a deploy that waits for a keyboard, a sign-up
mailer capped at a few dozen emails, task-token permissions wider than the state machine.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

import pytest

from local.template import Template
from tests.template_tables import ROOT

SAMCONFIG = ROOT / "samconfig.toml"
WORKSHOP_BUS = "Serverlesspresso"  # the seed's EventBusName: the default stack keeps it

# Properties whose value must be unique within one account and region (or globally), by resource type.
# A SAM function's EventBridgeRule events create rules named by their RuleName.
UNIQUE_NAME_PROPERTIES = {
    "AWS::Events::EventBus": "Name",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::Cognito::UserPoolDomain": "Domain",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}


@cache
def samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as file:
        return tomllib.load(file)


def environments() -> list[str]:
    """The config environments (`sam deploy --config-env NAME`): every table of samconfig.toml."""
    return sorted(name for name, section in samconfig().items() if isinstance(section, dict))


@cache  # parsing the template is the slow part; tests only read it
def stack_of(environment: str) -> Template:
    """template.yaml as `sam deploy --config-env <environment>` would deploy it."""
    config = samconfig()[environment]
    overrides = config.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    pairs = dict(item.split("=", 1) for item in shlex.split(overrides))
    stack_name = config["global"]["parameters"]["stack_name"]
    return Template.load(ROOT / "template.yaml", stack_name=stack_name, parameter_overrides=pairs)


def unique_names(stack: Template) -> Iterator[tuple[str, str]]:
    """(what, resolved name) for every explicitly named resource that must not collide."""
    for logical_id, resource in stack.resources().items():
        kind = resource["Type"]
        properties = stack.properties(logical_id)
        name_property = UNIQUE_NAME_PROPERTIES.get(kind)
        if name_property and name_property in properties:
            yield kind, str(stack.resolve(properties[name_property]))
        for event in properties.get("Events", {}).values():
            rule_name = event.get("Properties", {}).get("RuleName")
            if event.get("Type") == "EventBridgeRule" and rule_name is not None:
                yield "AWS::Events::Rule", str(stack.resolve(rule_name))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- 1. alarms delivered
def test_every_alarm_publishes_to_a_topic_whose_key_cloudwatch_may_use() -> None:
    # Given the default stack
    stack = stack_of("default")
    alarms = stack.resources("AWS::CloudWatch::Alarm")
    assert alarms, "the stack has alarms"
    topic_ids = {
        action["Ref"]
        for alarm_id in alarms
        for action in stack.properties(alarm_id)["AlarmActions"]
        if isinstance(action, dict) and "Ref" in action
    }
    assert topic_ids, "alarms notify a topic of the stack"

    for topic_id in topic_ids:
        # When CloudWatch publishes an alarm of this stack to the topic
        alarm_arn = (
            f"arn:aws:cloudwatch:{stack.region}:{stack.account_id}:alarm:serverlesspresso-SomeAlarm-ABC"
        )
        key = stack.properties(topic_id).get("KmsMasterKeyId")

        # Then the topic's key is one of ours (an AWS managed alias/aws/* key cannot grant CloudWatch) ...
        assert isinstance(key, dict) and "Ref" in key, f"{topic_id} is encrypted with {key!r}"
        key_id = key["Ref"]
        assert stack.resource(key_id)["Type"] == "AWS::KMS::Key"
        policy = stack.resolve(stack.properties(key_id)["KeyPolicy"])
        # ... its policy lets CloudWatch use it for this alarm ...
        assert allows(
            policy, "cloudwatch.amazonaws.com", {"kms:Decrypt", "kms:GenerateDataKey"}, alarm_arn, stack
        )
        # ... and the account can still administer it (else CloudFormation refuses the key).
        root = f"arn:aws:iam::{stack.account_id}:root"
        assert any(
            statement["Effect"] == "Allow" and as_list(statement["Principal"].get("AWS")) == [root]
            for statement in policy["Statement"]
        )
        # And a topic policy, if any, lets CloudWatch publish this alarm.
        for policy_id in stack.resources("AWS::SNS::TopicPolicy"):
            properties = stack.properties(policy_id)
            if {"Ref": topic_id} in properties["Topics"]:
                document = stack.resolve(properties["PolicyDocument"])
                assert allows(document, "cloudwatch.amazonaws.com", {"sns:Publish"}, alarm_arn, stack)


def allows(policy: dict[str, Any], service: str, actions: set[str], source_arn: str, stack: Template) -> bool:
    """Whether an Allow statement grants `service` every action for a request from `source_arn`."""
    granted: set[str] = set()
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or service not in as_list(statement["Principal"].get("Service")):
            continue
        if not conditions_hold(statement.get("Condition", {}), source_arn, stack):
            continue
        granted |= {
            wanted
            for wanted in actions
            for action in as_list(statement["Action"])
            if fnmatchcase(wanted, action) or fnmatchcase(wanted + "WithoutPlaintext", action)
        }
    return granted == actions


def conditions_hold(condition: dict[str, Any], source_arn: str, stack: Template) -> bool:
    context = {"aws:SourceAccount": stack.account_id, "aws:SourceArn": source_arn}
    for operator, tests in condition.items():
        for key, expected in tests.items():
            value = context.get(key)
            if value is None:
                return False
            if operator == "StringEquals" and value not in as_list(expected):
                return False
            if operator == "ArnLike" and not any(
                fnmatchcase(value, pattern) for pattern in as_list(expected)
            ):
                return False
            if operator not in ("StringEquals", "ArnLike"):
                raise AssertionError(f"condition operator {operator} not modelled: extend this test")
    return True


def test_the_alarm_key_refuses_other_accounts_alarms() -> None:
    # Given the alarm topic's key policy
    stack = stack_of("default")
    (key_id,) = stack.resources("AWS::KMS::Key")
    policy = stack.resolve(stack.properties(key_id)["KeyPolicy"])
    # When an alarm of another account asks CloudWatch to use it (the confused-deputy case)
    foreign_alarm = "arn:aws:cloudwatch:us-east-1:999999999999:alarm:theirs"
    # Then it may not
    assert not allows(policy, "cloudwatch.amazonaws.com", {"kms:GenerateDataKey"}, foreign_alarm, stack)


# ------------------------------------------------------------------- 2. environments side by side
def test_the_default_stack_keeps_the_workshop_bus_name() -> None:
    stack = stack_of("default")
    (bus_id,) = stack.resources("AWS::Events::EventBus")
    assert stack.physical_name(bus_id) == WORKSHOP_BUS


@pytest.mark.parametrize("environment", [env for env in environments() if env != "default"])
def test_every_environment_deploys_beside_the_default_one_in_the_same_account(environment: str) -> None:
    # Given the names the default stack and this environment's stack would create
    default_names = set(unique_names(stack_of("default")))
    their_names = set(unique_names(stack_of(environment)))
    assert ("AWS::Events::EventBus", WORKSHOP_BUS) in default_names
    # Then no name that must be unique in an account and region is taken twice
    assert default_names & their_names == set()


# ---------------------------------------------------------------------------- 3. no keyboard needed
@pytest.mark.parametrize("environment", environments())
def test_a_deploy_never_waits_for_a_keyboard(environment: str) -> None:
    deploy = samconfig()[environment].get("deploy", {}).get("parameters", {})
    assert deploy.get("confirm_changeset", False) is False
    assert deploy.get("resolve_s3") is True  # no bucket to create or name by hand either


# ------------------------------------------------------------------------ 5. the sign-up mailer
def email_configuration(**overrides: str) -> dict[str, Any]:
    stack = Template.load(ROOT / "template.yaml", parameter_overrides=overrides)
    (pool_id,) = stack.resources("AWS::Cognito::UserPool")
    return dict(stack.resolve(stack.properties(pool_id)["EmailConfiguration"]))


def test_without_an_ses_identity_cognito_sends_with_its_default_sender() -> None:
    assert email_configuration() == {"EmailSendingAccount": "COGNITO_DEFAULT"}


def test_with_an_ses_identity_cognito_sends_through_it() -> None:
    identity = "arn:aws:ses:us-east-1:123456789012:identity/coffee.example.com"
    assert email_configuration(SesEmailIdentityArn=identity) == {
        "EmailSendingAccount": "DEVELOPER",
        "SourceArn": identity,
    }
    sender = "Coffee <coffee@coffee.example.com>"
    assert email_configuration(SesEmailIdentityArn=identity, SesFromAddress=sender) == {
        "EmailSendingAccount": "DEVELOPER",
        "SourceArn": identity,
        "From": sender,
    }


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("arn:aws:ses:eu-west-1:123456789012:identity/coffee@example.com", True),
        ("coffee@example.com", False),  # an address, not the identity's ARN
        ("arn:aws:sns:eu-west-1:123456789012:identity/x", False),
    ],
)
def test_the_ses_identity_parameter_refuses_what_is_not_an_ses_identity_arn(
    value: str, accepted: bool
) -> None:
    pattern = stack_of("default").body["Parameters"]["SesEmailIdentityArn"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


# ------------------------------------------------------------------ 6. task-token permissions
def test_task_token_calls_are_granted_on_the_order_workflow_only() -> None:
    # Given every statement of the template that grants a task-token call
    stack = stack_of("default")
    statements = [
        (function_id, statement)
        for function_id in stack.resources("AWS::Serverless::Function")
        for policy in stack.properties(function_id).get("Policies", [])
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        if any(action.startswith("states:SendTask") for action in as_list(statement["Action"]))
    ]
    assert statements, "functions resume the workflow"
    # Then each names the order workflow's ARN, as SAM's StepFunctionsCallbackPolicy and CDK's
    # grantTaskResponse do, never "*" (the evidence is written beside the first statement).
    workflow = stack.arn("OrderProcessorStateMachine")
    for function_id, statement in statements:
        assert as_list(stack.resolve(statement["Resource"])) == [workflow], function_id


# Records that must outlive the stack: the order history and the accounts its userIds belong to.
RETAINED = ("OrdersTable", "UserPool")


@pytest.mark.parametrize("logical_id", RETAINED)
def test_order_history_and_accounts_survive_a_stack_deletion_or_replacement(logical_id: str) -> None:
    resource = stack_of("default").resource(logical_id)
    assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain")


def test_every_stateful_resource_says_what_happens_to_it_when_the_stack_goes() -> None:
    # cfn-lint's I3011 (make lint runs it) asks this of its own list of types; this is ours, so a
    # new table, queue, log group, pool or key cannot fall back to CloudFormation's silent Delete
    stateful = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::Cognito::UserPool")
    unstated = [
        logical_id
        for logical_id, resource in stack_of("default").resources(*stateful, "AWS::KMS::Key").items()
        if not {"DeletionPolicy", "UpdateReplacePolicy"} <= set(resource)
    ]
    assert unstated == []
