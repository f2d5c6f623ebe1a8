"""`make barista EMAIL=... [ENV=] [REMOVE=1]` (ops/baristas.py) against a stack deployed in moto."""

from __future__ import annotations

import boto3
import pytest

from ops.baristas import main
from ops.stack import run_command
from tests.ops.conftest import DeployedStack, create_stack_with_outputs, create_user_pool

EMAIL = "ana@example.com"
Capture = pytest.CaptureFixture[str]


def barista(session: boto3.Session, *argv: str) -> int:
    """The command as `make barista` runs it (errors become one line and exit 2)."""
    return run_command(lambda args: main(args, session), list(argv))


def groups_of(stack: DeployedStack, email: str) -> list[str]:
    response = stack.cognito.admin_list_groups_for_user(UserPoolId=stack.user_pool_id, Username=email)
    return [group["GroupName"] for group in response["Groups"]]


def status_of(stack: DeployedStack, email: str) -> str:
    return str(stack.cognito.admin_get_user(UserPoolId=stack.user_pool_id, Username=email)["UserStatus"])


def sign_up_as_customer(stack: DeployedStack, email: str) -> None:
    """A customer who signed up and set their own password (CONFIRMED)."""
    stack.cognito.admin_create_user(UserPoolId=stack.user_pool_id, Username=email, MessageAction="SUPPRESS")
    stack.cognito.admin_set_user_password(
        UserPoolId=stack.user_pool_id, Username=email, Password="A-long-passw0rd!", Permanent=True
    )


# ------------------------------------------------------------------------------------- adding
def test_a_new_email_becomes_an_invited_barista(deployed: DeployedStack, capsys: Capture) -> None:
    # When an operator adds an email nobody has signed up with
    code = barista(deployed.session, EMAIL)

    # Then the user exists, invited (temporary password), and is in the barista group
    assert code == 0
    assert status_of(deployed, EMAIL) == "FORCE_CHANGE_PASSWORD"
    assert groups_of(deployed, EMAIL) == ["barista"]
    assert capsys.readouterr().out == (
        f"{deployed.name} (us-east-1): created {EMAIL}, emailed an invitation, added to the barista group\n"
    )


def test_a_signed_up_customer_becomes_a_barista_without_a_new_invitation(
    deployed: DeployedStack, capsys: Capture
) -> None:
    # Given a customer who already signed up
    sign_up_as_customer(deployed, EMAIL)

    # When an operator adds them
    code = barista(deployed.session, EMAIL)

    # Then they are a barista and keep their own password
    assert code == 0
    assert groups_of(deployed, EMAIL) == ["barista"]
    assert status_of(deployed, EMAIL) == "CONFIRMED"
    assert capsys.readouterr().out.endswith(f"{EMAIL}: added to the barista group\n")


def test_adding_twice_changes_nothing_and_says_so(deployed: DeployedStack, capsys: Capture) -> None:
    sign_up_as_customer(deployed, EMAIL)
    barista(deployed.session, EMAIL)

    code = barista(deployed.session, EMAIL)

    assert code == 0
    assert groups_of(deployed, EMAIL) == ["barista"]
    assert capsys.readouterr().out.endswith(f"{EMAIL}: already a barista\n")


# ----------------------------------------------------------------------------------- removing
def test_removing_takes_the_barista_out_of_the_group_and_keeps_the_account(
    deployed: DeployedStack, capsys: Capture
) -> None:
    sign_up_as_customer(deployed, EMAIL)
    barista(deployed.session, EMAIL)

    code = barista(deployed.session, EMAIL, "--remove")

    assert code == 0
    assert groups_of(deployed, EMAIL) == []
    assert status_of(deployed, EMAIL) == "CONFIRMED"
    assert capsys.readouterr().out.endswith(f"{EMAIL}: removed from the barista group\n")


def test_removing_an_unknown_email_says_so(deployed: DeployedStack, capsys: Capture) -> None:
    code = barista(deployed.session, EMAIL, "--remove")

    assert code == 2
    assert capsys.readouterr().err == f"error: no user {EMAIL} in the user pool {deployed.user_pool_id}\n"


# -------------------------------------------------------------------------------- environments
def test_env_prod_acts_on_the_prod_stack_only(deployed: DeployedStack, capsys: Capture) -> None:
    # Given a prod stack beside dev, with its own user pool
    prod_cognito = deployed.session.client("cognito-idp")
    prod_pool = create_user_pool(prod_cognito)
    create_stack_with_outputs(deployed.session, "serverlesspresso-prod", {"UserPoolId": prod_pool})

    # When an operator adds a barista with ENV=prod
    code = barista(deployed.session, EMAIL, "--env", "prod")

    # Then the prod pool has them, the dev pool does not
    assert code == 0
    assert capsys.readouterr().out.startswith("serverlesspresso-prod (us-east-1): created")
    assert prod_cognito.admin_get_user(UserPoolId=prod_pool, Username=EMAIL)["Username"]
    assert deployed.cognito.list_users(UserPoolId=deployed.user_pool_id)["Users"] == []


# --------------------------------------------------------------------------------- pre-flight
def test_a_stack_that_does_not_exist_is_named_with_what_to_do(aws: boto3.Session, capsys: Capture) -> None:
    code = barista(aws, EMAIL)

    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: stack serverlesspresso (ENV=dev) does not exist in account ")
    assert "region us-east-1: deploy it first with `make deploy ENV=dev`" in error
    assert "Traceback" not in error


def test_missing_credentials_are_reported_without_a_stack_trace(
    monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    # Given no credentials anywhere (the test environment's dummy ones removed)
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(variable, raising=False)

    code = barista(boto3.Session(region_name="us-east-1"), EMAIL)

    assert code == 2
    assert capsys.readouterr().err == (
        "error: no AWS credentials found: run `aws configure` or `aws sso login`, or set AWS_PROFILE\n"
    )


def test_a_missing_region_is_reported(monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    code = barista(boto3.Session(), EMAIL)

    assert code == 2
    assert capsys.readouterr().err.startswith("error: no AWS region configured: set one")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["ana.example.com"], "error: 'ana.example.com' is not an email address"),
        ([EMAIL, "--env", "staging"], "error: unknown environment 'staging': use ENV= one of dev, prod"),
    ],
)
def test_bad_arguments_are_refused_before_any_aws_call(argv: list[str], error: str, capsys: Capture) -> None:
    # No mock_aws here: a call to AWS would hit the test guard (tests/conftest.py) and fail differently
    code = barista(boto3.Session(region_name="us-east-1"), *argv)

    assert code == 2
    assert capsys.readouterr().err.startswith(error)
