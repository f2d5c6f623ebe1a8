"""The deployed stack's parts of `make smoke` (ops/smoke.py) against moto: temporary Cognito users signed
in with their role and deleted, and the stack's alarms in ALARM found."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import jwt
from botocore.stub import Stubber

from ops.smoke import CognitoUsers, alarms_in_alarm, stack_alarm_names
from tests.ops.conftest import DeployedStack
from tests.template_tables import load_template


def create_app_client(stack: DeployedStack) -> str:
    """The template's UserPoolClient (its auth flows) in the moto user pool; its id."""
    client = load_template().properties("UserPoolClient")
    created = stack.cognito.create_user_pool_client(
        UserPoolId=stack.user_pool_id,
        ClientName="app",
        ExplicitAuthFlows=client["ExplicitAuthFlows"],
        GenerateSecret=client["GenerateSecret"],
    )
    return str(created["UserPoolClient"]["ClientId"])


def test_cognito_users_are_signed_in_with_their_role_and_deleted(deployed: DeployedStack) -> None:
    # Given the stack's user pool and app client
    users = CognitoUsers(deployed.cognito, deployed.user_pool_id, create_app_client(deployed))

    # When the smoke test creates a customer and a barista
    customer = users.create("customer")
    barista = users.create("barista")

    # Then each is signed in: an ID token of the pool, the barista's in the barista group
    customer_claims = jwt.decode(customer.token, options={"verify_signature": False})
    barista_claims = jwt.decode(barista.token, options={"verify_signature": False})
    assert customer_claims["token_use"] == barista_claims["token_use"] == "id"
    assert "cognito:groups" not in customer_claims
    assert barista_claims["cognito:groups"] == ["barista"]
    # And deleting removes both from the pool
    assert sorted(users.delete_all()) == sorted([customer.name, barista.name])
    assert deployed.cognito.list_users(UserPoolId=deployed.user_pool_id)["Users"] == []


def test_the_stacks_alarms_in_alarm_are_found(aws: boto3.Session) -> None:
    # Given a stack with two alarms, one of them in ALARM, and an alarm of another stack in ALARM
    # (CloudFormation stubbed: moto's cannot create alarms; CloudWatch is moto's)
    cloudwatch = aws.client("cloudwatch")
    names = ["serverlesspresso-FailedAlarm-1A", "serverlesspresso-QuietAlarm-2B", "serverlesspresso-prod-A"]
    # (the last one is the prod stack's: its name starts with the dev stack's too)
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/States",
            MetricName="ExecutionsFailed",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
    for name in (names[0], names[2]):
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    cloudformation = aws.client("cloudformation")
    stubber = Stubber(cloudformation)
    resources = [("FailedAlarm", names[0]), ("QuietAlarm", names[1]), ("AlarmTopic", "arn:aws:sns:x")]
    summaries = [
        {
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": physical_id,
            "ResourceType": "AWS::SNS::Topic" if logical_id == "AlarmTopic" else "AWS::CloudWatch::Alarm",
            "LastUpdatedTimestamp": datetime.now(UTC),
            "ResourceStatus": "CREATE_COMPLETE",
        }
        for logical_id, physical_id in resources
    ]
    stubber.add_response("list_stack_resources", {"StackResourceSummaries": summaries})
    stubber.activate()

    # When the smoke test looks for the stack's alarms in ALARM
    stack_alarms = stack_alarm_names(cloudformation, "serverlesspresso")
    firing = alarms_in_alarm(cloudwatch, stack_alarms)

    # Then it checks the stack's two and names exactly the one in ALARM
    assert stack_alarms == names[:2]
    assert firing == [names[0]]
