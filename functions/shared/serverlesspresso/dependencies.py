"""The objects handlers pass into domain code, built once per execution environment."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from serverlesspresso.aws import dynamodb_client
from serverlesspresso.orders import OrderRepository
from serverlesspresso.settings import get_settings

if TYPE_CHECKING:
    from serverlesspresso.admission import AdmissionDesk
    from serverlesspresso.shop import ShopConfigStore


@cache
def order_repository() -> OrderRepository:
    """The orders table, bound to the shared DynamoDB client."""
    return OrderRepository(get_settings().orders_table_name, dynamodb_client())


@cache
def shop_config_store() -> ShopConfigStore:
    """The shop config item, bound to the shared DynamoDB client."""
    # Imported here: only the API reads the shop config, and the event handlers' cold starts should
    # not pay for its models (bench/cold_start.py).
    from serverlesspresso.shop import ShopConfigStore

    settings = get_settings()
    return ShopConfigStore(
        settings.config_table_name,
        dynamodb_client(),
        settings.default_max_in_flight,
        settings.default_require_admission,
    )


@cache
def admission_desk() -> AdmissionDesk:
    """The admission codes (the display's QR code), kept beside the shop item in the config table."""
    from serverlesspresso.admission import AdmissionDesk

    return AdmissionDesk(get_settings().config_table_name, dynamodb_client())
