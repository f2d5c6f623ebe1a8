"""The objects handlers pass into domain code, built once per execution environment."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from serverlesspresso.aws import dynamodb_client, events_client
from serverlesspresso.changes import ChangeFeed
from serverlesspresso.orders import OrderRepository
from serverlesspresso.settings import get_push_settings, get_settings

if TYPE_CHECKING:
    from serverlesspresso.admission import AdmissionDesk
    from serverlesspresso.connections import ConnectionStore
    from serverlesspresso.push import ManagementApiPoster
    from serverlesspresso.shop import ShopConfigStore
    from serverlesspresso.tokens import TokenVerifier


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


@cache
def change_feed() -> ChangeFeed:
    """Announces order and shop changes to the push channel, on the order bus."""
    return ChangeFeed(events_client(), get_settings().event_bus_name)


@cache
def connection_store() -> ConnectionStore:
    """The push channel's connections table."""
    from serverlesspresso.connections import ConnectionStore

    return ConnectionStore(get_push_settings().connections_table_name, dynamodb_client())


@cache
def token_verifier() -> TokenVerifier:
    """Checks the ID tokens of the user pool's app client; its JWKS is cached with it."""
    from serverlesspresso.tokens import TokenVerifier

    settings = get_push_settings()
    return TokenVerifier.for_pool(settings.token_issuer, settings.token_audience, settings.jwks_url)


@cache
def push_poster() -> ManagementApiPoster:
    """PostToConnection on the WebSocket API's stage."""
    from serverlesspresso.aws import push_client
    from serverlesspresso.push import ManagementApiPoster

    return ManagementApiPoster(push_client(get_push_settings().push_endpoint))
