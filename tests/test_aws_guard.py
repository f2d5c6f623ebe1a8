"""The conftest guard: no test can reach real AWS, and moto keeps working."""

from __future__ import annotations

import socket

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from moto import mock_aws

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1)


def test_a_call_outside_mock_aws_is_refused_before_it_leaves_the_machine() -> None:
    # Given a client for the real DynamoDB endpoint and no mock active
    client = boto3.client("dynamodb", config=NO_RETRIES)
    assert client.meta.endpoint_url == "https://dynamodb.us-east-1.amazonaws.com"

    # When a test calls it, Then the guard refuses and names the request
    with pytest.raises(RuntimeError, match=r"blocked a request to real AWS \(POST https://dynamodb"):
        client.list_tables()


def test_clients_of_any_session_are_guarded() -> None:
    # Given a brand-new session (not boto3's default one) and a global service
    session = boto3.session.Session()
    sts = session.client("sts", config=NO_RETRIES)

    # When it is called outside mock_aws, Then it is refused as well
    with pytest.raises(RuntimeError, match="blocked a request to real AWS"):
        sts.get_caller_identity()


def test_calls_inside_mock_aws_are_answered_by_moto() -> None:
    # Given moto's mock
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="guarded",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        # When the table is listed, Then moto answers (the guard did not interfere)
        assert client.list_tables()["TableNames"] == ["guarded"]


def test_a_client_pointed_at_loopback_is_let_through() -> None:
    # Given a loopback port with nothing listening on it
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", config=NO_RETRIES)

    # When it is called, Then the request really is attempted: the connection is refused by the
    # operating system, not by the guard
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.list_tables()
