"""`make deploy`'s decisions (ops/deploy.py): what the pre-flight accepts and refuses, the sam deploy
command it runs, the outputs it prints. AWS is moto, or botocore's Stubber where moto cannot answer
(the public Powertools parameter lives under /aws/service/, which moto reserves)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ops.deploy import (
    layer_parameter_name,
    main,
    outputs_table,
    powertools_layer,
    preflight,
    sam_deploy_command,
)
from ops.stack import OperatorError, default_session, run_command
from tests.ops.conftest import create_stack_with_outputs
from tests.template_tables import load_template

Capture = pytest.CaptureFixture[str]
LAYER_ARN = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:20"


class SessionWithPublishedLayer:
    """The moto session, except that SSM answers the Powertools parameter (stubbed) with LAYER_ARN."""

    def __init__(self, session: boto3.Session, parameter: str) -> None:
        self._session = session
        self.region_name = session.region_name
        self.ssm = session.client("ssm")
        stubber = Stubber(self.ssm)
        stubber.add_response("get_parameter", {"Parameter": {"Name": parameter, "Value": LAYER_ARN}})
        stubber.activate()

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.ssm if service == "ssm" else self._session.client(service, **kwargs)


def test_the_layer_parameter_is_the_template_default_unless_samconfig_overrides_it() -> None:
    assert layer_parameter_name("default") == load_template().parameter("PowertoolsLayerArn")
    assert layer_parameter_name("default").startswith("/aws/service/powertools/python/")


def test_a_region_without_the_powertools_layer_is_refused_before_anything_is_created(
    aws: boto3.Session,
) -> None:
    # Given a region whose SSM has no such public parameter (moto: none of Powertools' are there)
    parameter = layer_parameter_name("default")

    # When the pre-flight looks the layer up, Then it says what is wrong and what to do
    with pytest.raises(
        OperatorError, match=r"does not exist in region us-east-1: Powertools does not publish"
    ):
        powertools_layer(aws.client("ssm"), parameter, "us-east-1")


def test_the_preflight_names_the_stack_account_region_and_layer(aws: boto3.Session) -> None:
    session = SessionWithPublishedLayer(aws, layer_parameter_name("prod"))

    plan = preflight("prod", session)

    assert (plan.where.stack_name, plan.where.config_env, plan.where.region) == (
        "serverlesspresso-prod",
        "prod",
        "us-east-1",
    )
    assert plan.layer_arn == LAYER_ARN
    assert str(plan).startswith(
        "deploying stack serverlesspresso-prod (ENV=prod, samconfig [prod]) to account "
    )


def test_sam_deploys_the_environment_unattended_in_the_checked_region(aws: boto3.Session) -> None:
    plan = preflight("dev", SessionWithPublishedLayer(aws, layer_parameter_name("default")))

    command = sam_deploy_command("sam", plan)

    assert command[:4] == ["sam", "deploy", "--config-env", "default"]
    assert command[command.index("--region") + 1] == "us-east-1"
    assert "--no-fail-on-empty-changeset" in command
    assert "--guided" not in command


def test_the_outputs_a_person_needs_come_first() -> None:
    outputs = {"NewOrderDLQUrl": "https://q", "ApiUrl": "https://api", "UserPoolId": "pool", "ClientId": "c"}

    table = outputs_table(outputs).splitlines()

    assert table == [
        "API: https://api",
        "user pool (make barista adds baristas here): pool",
        "app client (the screens sign in with it): c",
        "NewOrderDLQUrl: https://q",
    ]


def test_outputs_step_prints_the_deployed_stacks_outputs(aws: boto3.Session, capsys: Capture) -> None:
    create_stack_with_outputs(
        aws, "serverlesspresso", {"ApiUrl": "https://api.example", "UserPoolId": "pool"}
    )

    code = run_command(lambda argv: main(argv, aws), ["outputs"])

    assert code == 0
    assert "API: https://api.example\n" in capsys.readouterr().out


def test_the_preflight_without_credentials_fails_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(variable, raising=False)

    code = run_command(lambda argv: main(argv, boto3.Session(region_name="eu-west-1")), ["preflight"])

    assert code == 2
    assert capsys.readouterr().err.startswith("error: no AWS credentials found")


def test_aws_region_chooses_the_region_as_in_the_aws_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    assert default_session().region_name == "eu-west-2"
