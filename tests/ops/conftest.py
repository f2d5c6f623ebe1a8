"""A deployed stack in moto for the operators' commands: the template's user pool and barista group,
and a CloudFormation stack of samconfig's name whose outputs point at them (moto's CloudFormation
cannot create Cognito resources, so the stack only carries the outputs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops.stack import stack_name
from tests.template_tables import load_template

REGION = "us-east-1"


@dataclass(frozen=True)
class DeployedStack:
    """What a test needs of the stack: its name, the user pool's id, a session and a Cognito client."""

    name: str
    user_pool_id: str
    session: boto3.Session
    cognito: Any


def create_stack_with_outputs(session: boto3.Session, name: str, outputs: dict[str, str]) -> None:
    """A CloudFormation stack named `name` whose Outputs are `outputs` (one placeholder resource)."""
    body = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    session.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(body))


def create_user_pool(cognito: Any) -> str:
    """The template's UserPool (how users sign in) and its groups, created in moto; returns the pool id."""
    template = load_template()
    pool = template.properties("UserPool")
    user_pool_id: str = cognito.create_user_pool(
        PoolName=template.resolve(pool["UserPoolName"]),
        UsernameAttributes=pool["UsernameAttributes"],
        AutoVerifiedAttributes=pool["AutoVerifiedAttributes"],
    )["UserPool"]["Id"]
    for group_id in template.resources("AWS::Cognito::UserPoolGroup"):
        cognito.create_group(UserPoolId=user_pool_id, GroupName=template.properties(group_id)["GroupName"])
    return user_pool_id


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    """An AWS account in moto, and a session in its region."""
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def deployed(aws: boto3.Session) -> DeployedStack:
    """The dev stack (samconfig's [default]) deployed: user pool, barista group, stack outputs."""
    cognito = aws.client("cognito-idp")
    user_pool_id = create_user_pool(cognito)
    name = stack_name("dev")
    create_stack_with_outputs(aws, name, {"UserPoolId": user_pool_id})
    return DeployedStack(name, user_pool_id, aws, cognito)
