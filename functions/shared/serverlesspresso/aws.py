"""AWS clients, created once per execution environment and passed into domain code."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def dynamodb_client() -> Any:
    """The DynamoDB client shared by every invocation of this execution environment."""
    return boto3.client("dynamodb")


@cache
def sfn_client() -> Any:
    """The Step Functions client (SendTaskSuccess / SendTaskFailure)."""
    return boto3.client("stepfunctions")


@cache
def events_client() -> Any:
    """The EventBridge client (PutEvents)."""
    return boto3.client("events")
