"""Publishing our own events to the bus."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from serverlesspresso.models import EVENT_SOURCE


class PublishFailed(Exception):
    """EventBridge accepted the call but refused the entry (FailedEntryCount > 0)."""


def publish_event(detail_type: str, detail: Mapping[str, Any], *, bus_name: str, client: Any) -> str:
    """Put one event on the bus and return its id; a refused entry raises so the invocation is retried."""
    response = client.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": bus_name,
            }
        ]
    )
    entry = response["Entries"][0]
    if response.get("FailedEntryCount", 0) or "EventId" not in entry:
        raise PublishFailed(f"{detail_type} refused: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}")
    return str(entry["EventId"])
