"""Environment variables, parsed once per execution environment into a typed model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

DEFAULT_MAX_IN_FLIGHT = 20  # = template.yaml parameter DefaultMaxInFlight's Default


@dataclass(frozen=True)
class Settings:
    """The configuration every function reads from its environment (see template.yaml Globals)."""

    orders_table_name: str
    config_table_name: str
    event_bus_name: str
    # The workflow's capacity when the shop item has no maxInFlight (template parameter
    # DefaultMaxInFlight); only the API reads it, to show the effective value.
    default_max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    # How long after an order was placed the reconciler settles it if it has not ended; None: the
    # domain's LONGEST_ORDER_LIFETIME. Set shorter only where waits are time-scaled (local engine).
    settle_after_seconds: int | None = None
    # Whether POST /orders needs an admission code when the shop item does not say (template parameter
    # RequireAdmission); only the API reads it.
    default_require_admission: bool = False


@cache
def get_settings() -> Settings:
    """Read the environment once; a missing variable is a deployment error and fails loudly."""
    try:
        return Settings(
            orders_table_name=os.environ["ORDERS_TABLE_NAME"],
            config_table_name=os.environ["CONFIG_TABLE_NAME"],
            event_bus_name=os.environ["EVENT_BUS_NAME"],
            default_max_in_flight=int(os.environ.get("DEFAULT_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT)),
            settle_after_seconds=int(os.environ["SETTLE_AFTER_SECONDS"])
            if os.environ.get("SETTLE_AFTER_SECONDS")
            else None,
            default_require_admission=os.environ.get("REQUIRE_ADMISSION", "false").lower() == "true",
        )
    except KeyError as missing:
        raise RuntimeError(f"environment variable {missing} is not set (see template.yaml Globals)") from None


@dataclass(frozen=True)
class PushSettings:
    """What the push channel's functions read (template.yaml, the Push* functions' Environment)."""

    connections_table_name: str
    # The Cognito user pool's issuer, the app client id, and the pool's JWKS URL ($connect only).
    token_issuer: str = ""
    token_audience: str = ""
    jwks_url: str = ""
    # https://{api}.execute-api.{region}.amazonaws.com/{stage}: the management API (fan-out only).
    push_endpoint: str = ""


@cache
def get_push_settings() -> PushSettings:
    """Read the push channel's environment once; the connections table is required by all of them."""
    try:
        table = os.environ["CONNECTIONS_TABLE_NAME"]
    except KeyError:
        raise RuntimeError(
            "environment variable CONNECTIONS_TABLE_NAME is not set (see template.yaml)"
        ) from None
    return PushSettings(
        connections_table_name=table,
        token_issuer=os.environ.get("TOKEN_ISSUER", ""),
        token_audience=os.environ.get("TOKEN_AUDIENCE", ""),
        jwks_url=os.environ.get("JWKS_URL", ""),
        push_endpoint=os.environ.get("PUSH_ENDPOINT", ""),
    )
