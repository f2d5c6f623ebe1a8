"""Items the local engine writes after provisioning: the shop's default configuration.

One function, so the API work can extend the default config (menu, per-customer limits, ...) here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local.template import Template

SHOP_CONFIG_ID = "shop"


@dataclass(frozen=True)
class SeedItem:
    """One item to put into the table with the given logical id (plain Python values)."""

    table: str
    item: dict[str, Any]


def seed_items(template: Template) -> list[SeedItem]:
    """The default data of a fresh local stack: the shop is open with the template's default capacity,
    and takes orders without an admission code (the template's RequireAdmission is for AWS)."""
    return [
        SeedItem(
            table="ConfigTable",
            item={
                "configId": SHOP_CONFIG_ID,
                "isOpen": True,
                "maxInFlight": int(template.parameter("DefaultMaxInFlight")),
                "requireAdmission": False,
            },
        )
    ]
