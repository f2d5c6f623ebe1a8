"""Which stack an operator's command acts on, and the pre-flight checks every command shares.

`ENV=dev` (or `default`) is samconfig.toml's [default] environment, `ENV=prod` its [prod] one; the
stack name comes from the environment's `stack_name`. The region and credentials come from the
usual AWS chain (AWS_PROFILE, AWS_REGION, `aws configure`, SSO), as for the SAM CLI.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

ROOT = Path(__file__).resolve().parent.parent
SAMCONFIG = ROOT / "samconfig.toml"
DEFAULT_ENVIRONMENT = "dev"
# `ENV=dev` names samconfig.toml's [default] environment (its Stage is dev); other names are themselves.
ENVIRONMENT_ALIASES = {"dev": "default"}
# Statuses in which a stack's outputs are those of its last successful deploy.
USABLE_STATUSES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)
# What STS answers when the credentials exist but are not (or no longer) valid.
REJECTED_CREDENTIALS = frozenset(
    {"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch", "AccessDenied"}
)


class OperatorError(Exception):
    """Something an operator must fix before the command can run; the message says what."""


@dataclass(frozen=True)
class StackLocation:
    """Which stack a command acts on, and where: samconfig environment, stack name, account, region."""

    environment: str
    config_env: str
    stack_name: str
    account: str
    region: str


def config_env(environment: str, samconfig_path: Path = SAMCONFIG) -> str:
    """samconfig.toml's environment for `ENV=environment`; an unknown one is an OperatorError."""
    name = ENVIRONMENT_ALIASES.get(environment, environment)
    with samconfig_path.open("rb") as file:
        sections = tomllib.load(file)
    if not isinstance(sections.get(name), dict):
        known = sorted(
            ["dev", *(key for key in sections if isinstance(sections[key], dict) and key != "default")]
        )
        raise OperatorError(f"unknown environment {environment!r}: use ENV= one of {', '.join(known)}")
    return name


def stack_name(environment: str, samconfig_path: Path = SAMCONFIG) -> str:
    """The stack name samconfig.toml gives the environment."""
    name = config_env(environment, samconfig_path)
    with samconfig_path.open("rb") as file:
        return str(tomllib.load(file)[name]["global"]["parameters"]["stack_name"])


def default_session() -> boto3.Session:
    """A session from the usual AWS chain; AWS_REGION wins over the profile's region, as in the AWS CLI v2."""
    return boto3.Session(region_name=os.environ.get("AWS_REGION") or None)


def region_of(session: boto3.Session) -> str:
    """The session's region, or an OperatorError saying how to set one."""
    if not session.region_name:
        raise OperatorError(
            "no AWS region configured: set one, e.g. `export AWS_REGION=eu-west-1`, or run `aws configure`"
        )
    return str(session.region_name)


def account_of(sts: Any) -> str:
    """The account the credentials belong to (sts:GetCallerIdentity), or an OperatorError saying why not."""
    try:
        identity = sts.get_caller_identity()
    except NoCredentialsError:
        raise OperatorError(
            "no AWS credentials found: run `aws configure` or `aws sso login`, or set AWS_PROFILE"
        ) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in REJECTED_CREDENTIALS:
            message = error.response["Error"].get("Message", "")
            raise OperatorError(f"AWS rejected the credentials ({code}: {message}): refresh them") from None
        raise
    except NoRegionError:
        raise OperatorError("no AWS region configured: set AWS_REGION") from None
    return str(identity["Account"])


def locate_stack(environment: str, session: boto3.Session) -> StackLocation:
    """Pre-flight shared by every command: environment known, region set, credentials valid."""
    config = config_env(environment)
    region = region_of(session)
    account = account_of(session.client("sts", region_name=region))
    return StackLocation(environment, config, stack_name(environment), account, region)


def stack_outputs(cloudformation: Any, where: StackLocation) -> dict[str, str]:
    """The stack's outputs, or an OperatorError when the stack is missing or not usable."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=where.stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in error.response.get("Error", {}).get("Message", ""):
            raise OperatorError(
                f"stack {where.stack_name} (ENV={where.environment}) does not exist in account "
                f"{where.account}, region {where.region}: deploy it first with `make deploy "
                f"ENV={where.environment}`, or set AWS_REGION to the region it is in"
            ) from None
        raise
    status = stack["StackStatus"]
    if status not in USABLE_STATUSES:
        raise OperatorError(
            f"stack {where.stack_name} is {status}: wait for it to finish, or fix the failed deploy "
            "(see its events in the CloudFormation console) and deploy again"
        )
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def output(outputs: dict[str, str], key: str, where: StackLocation) -> str:
    """One output by key, or an OperatorError when the stack does not have it."""
    if key not in outputs:
        raise OperatorError(
            f"stack {where.stack_name} has no output {key}: is it this project's stack? "
            f"Deploy the current template with `make deploy ENV={where.environment}`"
        )
    return outputs[key]


def run_command(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's main; an OperatorError or an AWS refusal becomes one `error:` line and exit 2."""
    try:
        return main(argv)
    except OperatorError as error:
        print(f"error: {error}", file=sys.stderr)
    except ClientError as error:
        details = error.response.get("Error", {})
        print(
            f"error: AWS refused {error.operation_name}: {details.get('Code')}: {details.get('Message')}",
            file=sys.stderr,
        )
    except BotoCoreError as error:
        print(f"error: {error}", file=sys.stderr)
    return 2
