"""The shop's configuration: open or closed, capacity, the menu, and the per-customer order limit.

One item (configId "shop") in the config table. The workflow owns `inFlight` (the string set of taken
capacity slots, see docs/design.md "Capacity"); this module never writes it and exposes only its size.
Every write is an UpdateItem that SETs exactly the fields being changed, so a config change can never
clobber a slot the workflow is adding or removing at the same moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from serverlesspresso.orders import from_item, to_item

SHOP_CONFIG_ID = "shop"

# How many orders one customer may have open (placed and not yet ended) at once, when the config item
# does not say. Three covers "a coffee for me and two colleagues" while stopping one account from
# draining the shop's capacity (maxInFlight) on its own.
DEFAULT_MAX_OPEN_ORDERS_PER_CUSTOMER = 3
MAX_OPEN_ORDERS_PER_CUSTOMER_LIMIT = 20
MAX_IN_FLIGHT_LIMIT = 1000
# How many orders one admission code (the QR code on the display) lets in, as the original's Validator.
DEFAULT_ORDERS_PER_ADMISSION_CODE = 10
MAX_ORDERS_PER_ADMISSION_CODE = 1000

# The menu a fresh shop serves: the one place it is defined (the local engine seeds from it too).
DEFAULT_MENU: tuple[dict[str, Any], ...] = (
    {"name": "Espresso", "modifiers": ["Decaf", "Extra shot"]},
    {"name": "Americano", "modifiers": ["Decaf", "Extra shot", "Whole milk", "Oat milk"]},
    {
        "name": "Cappuccino",
        "modifiers": ["Decaf", "Extra shot", "Whole milk", "Oat milk", "Soy milk", "Cinnamon"],
    },
    {
        "name": "Latte",
        "modifiers": ["Decaf", "Extra shot", "Whole milk", "Oat milk", "Soy milk", "Vanilla syrup"],
    },
    {"name": "Flat white", "modifiers": ["Decaf", "Extra shot", "Whole milk", "Oat milk"]},
    {"name": "Mocha", "modifiers": ["Decaf", "Extra shot", "Whole milk", "Oat milk", "Whipped cream"]},
)

# A drink or modifier name: 1-64 characters, no leading or trailing whitespace.
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]


class InvalidShopRequest(ValueError):
    """A request does not fit the shop's rules (e.g. a drink not on the menu); `field` names the culprit."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class MenuDrink(BaseModel):
    """One drink on the menu and the modifiers a customer may add to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    modifiers: list[Name] = Field(default_factory=list, max_length=20)

    @field_validator("modifiers")
    @classmethod
    def _unique_modifiers(cls, modifiers: list[str]) -> list[str]:
        if len(set(modifiers)) != len(modifiers):
            raise ValueError("modifiers must be unique")
        return modifiers


Menu = Annotated[list[MenuDrink], Field(min_length=1, max_length=50)]


def _unique_drinks(menu: list[MenuDrink]) -> list[MenuDrink]:
    names = [drink.name for drink in menu]
    if len(set(names)) != len(names):
        raise ValueError("drink names must be unique")
    return menu


class ShopConfig(BaseModel):
    """The shop configuration as the API shows it (inFlight only as its size, ordersInFlight)."""

    model_config = ConfigDict(frozen=True)

    isOpen: bool
    maxInFlight: int
    ordersInFlight: int
    maxOpenOrdersPerCustomer: int
    menu: list[MenuDrink]
    # POST /orders needs a current admission code from the display (serverlesspresso.admission).
    requireAdmission: bool
    ordersPerAdmissionCode: int

    def drink(self, name: str) -> MenuDrink | None:
        """The menu entry called exactly `name`, if any."""
        return next((drink for drink in self.menu if drink.name == name), None)


class ShopConfigUpdate(BaseModel):
    """A PUT /config body: any subset of the writable fields; everything else (inFlight!) is refused."""

    model_config = ConfigDict(extra="forbid")

    isOpen: StrictBool | None = None
    maxInFlight: StrictInt | None = Field(default=None, ge=1, le=MAX_IN_FLIGHT_LIMIT)
    maxOpenOrdersPerCustomer: StrictInt | None = Field(
        default=None, ge=1, le=MAX_OPEN_ORDERS_PER_CUSTOMER_LIMIT
    )
    menu: Menu | None = None
    requireAdmission: StrictBool | None = None
    ordersPerAdmissionCode: StrictInt | None = Field(default=None, ge=1, le=MAX_ORDERS_PER_ADMISSION_CODE)

    @field_validator("menu")
    @classmethod
    def _menu_drinks_unique(cls, menu: list[MenuDrink] | None) -> list[MenuDrink] | None:
        return _unique_drinks(menu) if menu is not None else None

    @model_validator(mode="after")
    def _something_to_change(self) -> ShopConfigUpdate:
        if not self.model_fields_set:
            raise ValueError(f"give at least one of {', '.join(type(self).model_fields)}")
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller set, as plain values ready to store."""
        return self.model_dump(include=self.model_fields_set, mode="json")


class ShopConfigStore:
    """The shop item in the config table (a different table from the orders, hence its own class)."""

    def __init__(
        self,
        table_name: str,
        client: Any,
        default_max_in_flight: int,
        default_require_admission: bool,
    ) -> None:
        self.table_name = table_name
        self.client = client
        # The workflow's default when the item has no maxInFlight (template parameter DefaultMaxInFlight).
        self.default_max_in_flight = default_max_in_flight
        # Whether orders need an admission code when the item does not say (template parameter
        # RequireAdmission: on in AWS; the local seed stores it off).
        self.default_require_admission = default_require_admission

    def get(self, released_slot: str | None = None) -> ShopConfig:
        """The current configuration (strongly consistent), with defaults for whatever is not stored.

        `released_slot`: a capacity slot to count as free even if the workflow has not removed it yet
        (the slot of an order that has just ended, see push.push_change).
        """
        response = self.client.get_item(
            TableName=self.table_name, Key=to_item({"configId": SHOP_CONFIG_ID}), ConsistentRead=True
        )
        item = from_item(response.get("Item") or {})
        if released_slot and item.get("inFlight"):
            item["inFlight"] = set(item["inFlight"]) - {released_slot}
        return self._view(item)

    def update(self, update: ShopConfigUpdate) -> ShopConfig:
        """SET only the fields in `update` (creating the item if needed); returns the config after."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        for index, (name, value) in enumerate(update.changes().items()):
            names[f"#f{index}"] = name
            values[f":v{index}"] = value
        response = self.client.update_item(
            TableName=self.table_name,
            Key=to_item({"configId": SHOP_CONFIG_ID}),
            UpdateExpression="SET " + ", ".join(f"#f{index} = :v{index}" for index in range(len(names))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
            ReturnValues="ALL_NEW",
        )
        return self._view(from_item(response.get("Attributes") or {}))

    def _view(self, item: Mapping[str, Any]) -> ShopConfig:
        # Defaults mirror the workflow: no isOpen means open, no maxInFlight means DefaultMaxInFlight.
        return ShopConfig(
            isOpen=bool(item.get("isOpen", True)),
            maxInFlight=int(item.get("maxInFlight", self.default_max_in_flight)),
            ordersInFlight=len(item.get("inFlight") or ()),
            maxOpenOrdersPerCustomer=int(
                item.get("maxOpenOrdersPerCustomer", DEFAULT_MAX_OPEN_ORDERS_PER_CUSTOMER)
            ),
            menu=[MenuDrink.model_validate(drink) for drink in item.get("menu") or DEFAULT_MENU],
            requireAdmission=bool(item.get("requireAdmission", self.default_require_admission)),
            ordersPerAdmissionCode=int(item.get("ordersPerAdmissionCode", DEFAULT_ORDERS_PER_ADMISSION_CODE)),
        )


def check_drink(config: ShopConfig, drink: str, modifiers: list[str]) -> MenuDrink:
    """The menu entry for `drink` if all modifiers are allowed; else InvalidShopRequest naming the field."""
    entry = config.drink(drink)
    if entry is None:
        raise InvalidShopRequest(f"{drink!r} is not on the menu", field="drink")
    for index, modifier in enumerate(modifiers):
        if modifier not in entry.modifiers:
            raise InvalidShopRequest(f"{modifier!r} is not available for {drink}", field=f"modifiers.{index}")
    return entry
