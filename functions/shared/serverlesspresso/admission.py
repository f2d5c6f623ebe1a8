"""Admission codes: the QR code on the display that lets people at the coffee bar order (the original's
Validator service), so that nobody orders from elsewhere or in bulk.

Time is cut into windows of WINDOW_SECONDS (5 minutes). A window's code is `<window>-<tag>`, the tag an
HMAC-SHA256 of the window number with the shop's secret, so a code cannot be forged or moved to another
window, and needs no item of its own to be checked. The secret is created on first use (one item in the
config table, written with if_not_exists so concurrent first calls agree on one secret). A code admits
`ordersPerAdmissionCode` orders: each admission is one conditional ADD on the window's counter item,
so two customers can never both take the last place. The code shown stays valid through the next
window too (GRACE_WINDOWS), so someone who scanned just before it rotated can still order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from serverlesspresso.orders import from_item, timestamp, to_item

WINDOW_SECONDS = 300
GRACE_WINDOWS = 1  # the previous window's code is still accepted
SECRET_ITEM_ID = "admission-secret"
COUNTER_ITEM_PREFIX = "admission#"
_TAG_LENGTH = 16
CODE_PATTERN = re.compile(rf"^(\d{{1,12}})-([A-Z2-7]{{{_TAG_LENGTH}}})$")


class AdmissionRefused(Exception):
    """POST /orders without a valid current admission code; `reason` says which way it failed."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "missing": "scan the QR code on the coffee bar's screen to order",
        "forged": "this admission code is not valid; scan the QR code on the coffee bar's screen",
        "expired": "this admission code has expired; scan the QR code on the coffee bar's screen again",
        "used_up": "this admission code has been used up; wait for the next QR code on the screen",
    }

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGES[reason])
        self.reason = reason


@dataclass(frozen=True)
class AdmissionCode:
    """The code of one window, as the display shows it."""

    code: str
    window: int
    starts_at: datetime
    expires_at: datetime  # when the display moves on to the next code
    orders_left: int
    orders_per_code: int

    def as_dict(self) -> dict[str, Any]:
        """JSON body of GET /admission."""
        return {
            "code": self.code,
            "startsAt": timestamp(self.starts_at),
            "expiresAt": timestamp(self.expires_at),
            "ordersLeft": self.orders_left,
            "ordersPerCode": self.orders_per_code,
        }


class AdmissionDesk:
    """Issues and checks admission codes; state lives in the config table beside the shop item."""

    def __init__(self, table_name: str, client: Any, window_seconds: int = WINDOW_SECONDS) -> None:
        self.table_name = table_name
        self.client = client
        self.window_seconds = window_seconds
        self._secret: bytes | None = None

    def current(self, orders_per_code: int, now: datetime | None = None) -> AdmissionCode:
        """The code of the window `now` falls in, and how many orders it still admits."""
        window = self._window(now or datetime.now(UTC))
        used = self._used(window)
        starts_at = datetime.fromtimestamp(window * self.window_seconds, UTC)
        return AdmissionCode(
            code=self.code_for(window),
            window=window,
            starts_at=starts_at,
            expires_at=datetime.fromtimestamp((window + 1) * self.window_seconds, UTC),
            orders_left=max(0, orders_per_code - used),
            orders_per_code=orders_per_code,
        )

    def code_for(self, window: int) -> str:
        """The code of a window: its number and the HMAC tag only the shop's secret can make."""
        digest = hmac.new(self._load_secret(), str(window).encode(), hashlib.sha256).digest()
        return f"{window}-{base64.b32encode(digest).decode()[:_TAG_LENGTH]}"

    def admit(self, code: str | None, orders_per_code: int, now: datetime | None = None) -> None:
        """Take one place of `code`; AdmissionRefused (missing, forged, expired, used_up) otherwise."""
        if not code:
            raise AdmissionRefused("missing")
        found = CODE_PATTERN.match(code.strip().upper())
        if found is None:
            raise AdmissionRefused("forged")
        window = int(found.group(1))
        if not hmac.compare_digest(self.code_for(window), found.group(0)):
            raise AdmissionRefused("forged")
        current = self._window(now or datetime.now(UTC))
        if window > current:
            raise AdmissionRefused("forged")  # a genuine future code cannot exist: the tag was guessed
        if window < current - GRACE_WINDOWS:
            raise AdmissionRefused("expired")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({"configId": f"{COUNTER_ITEM_PREFIX}{window}"}),
                UpdateExpression="ADD used :one",
                ConditionExpression="attribute_not_exists(used) OR used < :limit",
                ExpressionAttributeValues=to_item({":one": 1, ":limit": orders_per_code}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise AdmissionRefused("used_up") from None

    def _window(self, now: datetime) -> int:
        return int(now.timestamp()) // self.window_seconds

    def _used(self, window: int) -> int:
        response = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({"configId": f"{COUNTER_ITEM_PREFIX}{window}"}),
            ConsistentRead=True,
        )
        return int(from_item(response.get("Item") or {}).get("used", 0))

    def _load_secret(self) -> bytes:
        if self._secret is None:
            # if_not_exists: the first caller's random secret wins, every later (or racing) one reads it.
            response = self.client.update_item(
                TableName=self.table_name,
                Key=to_item({"configId": SECRET_ITEM_ID}),
                UpdateExpression="SET secret = if_not_exists(secret, :fresh)",
                ExpressionAttributeValues=to_item({":fresh": secrets.token_hex(32)}),
                ReturnValues="ALL_NEW",
            )
            self._secret = str(from_item(response["Attributes"])["secret"]).encode()
        return self._secret
