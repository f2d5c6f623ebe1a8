"""The objects handlers pass into domain code, built once per execution environment."""

from __future__ import annotations

from functools import cache

from serverlesspresso.aws import dynamodb_client
from serverlesspresso.orders import OrderRepository
from serverlesspresso.settings import get_settings


@cache
def order_repository() -> OrderRepository:
    """The orders table, bound to the shared DynamoDB client."""
    return OrderRepository(get_settings().orders_table_name, dynamodb_client())
