"""AWS clients, created once per execution environment and passed into domain code."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# A PostToConnection that takes longer than this is given up (and counted as failed), so one slow
# call cannot hold the fan-out; one retry covers a dropped connection to API Gateway.
PUSH_CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"max_attempts": 2, "mode": "standard"},
    max_pool_connections=16,
)


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


@cache
def push_client(endpoint_url: str) -> Any:
    """The API Gateway management API client (PostToConnection) of the WebSocket API's stage."""
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=PUSH_CLIENT_CONFIG)
