"""`make replay`: put dead-lettered events back on the bus, then delete each message whose event was
accepted.

A dead-letter queue holds one of two shapes: an EventBridge rule's DLQ holds the event itself (with
RULE_ARN / ERROR_CODE attributes); a function's on-failure destination (HandlerFailureQueue) holds
Lambda's invocation record, the event in `requestPayload`. Both are read. The handlers are idempotent
(every write is conditional; a stale or repeated event changes nothing), so a replay is safe, also of
an event that was handled meanwhile. The replayed event keeps its source, detail-type, detail,
resources (the execution ARN the handlers check) and time; EventBridge gives it a new id.

Every message is listed first. While the command runs the messages it read are invisible to anyone
else (VisibilityTimeout); a message is deleted only once PutEvents accepted its entry, and anything
not replayed (a dry run, a refused entry, a message that holds no application event) becomes visible
again at once and stays in its queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from serverlesspresso.models import EVENT_SOURCE

HOLD_SECONDS = 300  # how long the messages being replayed stay invisible to other readers
PUT_EVENTS_BATCH = 10  # PutEvents takes at most 10 entries


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter queue and the event it holds (None when it holds none)."""

    queue: str  # logical id
    queue_url: str
    receipt_handle: str
    shape: str  # "event" (rule DLQ), "invocation record" (Lambda on-failure), or "unreadable"
    event: dict[str, Any] | None

    @property
    def replayable(self) -> bool:
        """Only the application's own events go back on the bus (e.g. not a scheduler's trigger)."""
        return self.event is not None and self.event.get("source") == EVENT_SOURCE

    def describe(self) -> str:
        """One line for the listing."""
        if self.event is None:
            return f"{self.queue}: {self.shape} message, left in the queue"
        detail = self.event["detail"] if isinstance(self.event.get("detail"), dict) else {}
        order = f" order {detail['orderId']}" if "orderId" in detail else ""
        what = f"{self.event.get('source')} {self.event.get('detail-type')}{order} ({self.shape})"
        return f"{self.queue}: {what}" + ("" if self.replayable else ", not ours: left in the queue")


@dataclass
class ReplayReport:
    """What a replay found and did."""

    found: list[DeadLetter]
    replayed: list[DeadLetter]
    failed: list[tuple[DeadLetter, str]]

    @property
    def skipped(self) -> list[DeadLetter]:
        """Messages left in their queue on purpose (not an application event)."""
        return [letter for letter in self.found if not letter.replayable]


def event_of(body: str) -> tuple[str, dict[str, Any] | None]:
    """(shape, event) of a dead-letter message body."""
    try:
        message = json.loads(body)
    except ValueError:
        return "unreadable", None
    if isinstance(message, dict) and isinstance(message.get("requestPayload"), dict):
        return "invocation record", message["requestPayload"]
    if isinstance(message, dict) and "detail-type" in message and "source" in message:
        return "event", message
    return "unreadable", None


def read_dead_letters(
    sqs: Any, queues: Mapping[str, str], hold_seconds: int = HOLD_SECONDS
) -> list[DeadLetter]:
    """Every message now in the queues, each held invisible for `hold_seconds` while we work."""
    letters = []
    for logical_id, url in sorted(queues.items()):
        for message in _receive_all(sqs, url, hold_seconds):
            shape, event = event_of(message["Body"])
            letters.append(DeadLetter(logical_id, url, message["ReceiptHandle"], shape, event))
    return letters


def _receive_all(sqs: Any, url: str, hold_seconds: int) -> Iterator[dict[str, Any]]:
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=hold_seconds, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return
        yield from messages


def replay_dead_letters(
    *,
    sqs: Any,
    events: Any,
    queues: Mapping[str, str],
    bus_name: str,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> ReplayReport:
    """List every dead letter, then (unless `dry_run`) replay the application's events; see the module."""
    found = read_dead_letters(sqs, queues)
    report = ReplayReport(found, [], [])
    say(f"{len(found)} dead-lettered message(s):" if found else "No dead-lettered messages.")
    for letter in found:
        say(f"  {letter.describe()}")
    to_replay = [letter for letter in found if letter.replayable]
    if dry_run:
        say(f"Dry run: would replay {len(to_replay)} event(s) to bus {bus_name}; nothing changed.")
        _release(sqs, found)
        return report
    _release(sqs, report.skipped)
    for start in range(0, len(to_replay), PUT_EVENTS_BATCH):
        batch = to_replay[start : start + PUT_EVENTS_BATCH]
        try:
            response = events.put_events(Entries=[_entry(letter.event or {}, bus_name) for letter in batch])
        except (ClientError, BotoCoreError) as error:  # nothing of this batch was accepted
            report.failed += [(letter, f"{type(error).__name__}: {error}") for letter in batch]
            continue
        for letter, entry in zip(batch, response["Entries"], strict=True):
            if "EventId" in entry and not entry.get("ErrorCode"):
                sqs.delete_message(QueueUrl=letter.queue_url, ReceiptHandle=letter.receipt_handle)
                report.replayed.append(letter)
            else:
                report.failed.append((letter, f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}"))
    _release(sqs, [letter for letter, _ in report.failed])
    say(f"Replayed {len(report.replayed)} event(s) to bus {bus_name}; deleted their messages.")
    for letter, reason in report.failed:
        say(f"  NOT replayed, left in the queue: {letter.describe()}: {reason}")
    return report


def _entry(event: Mapping[str, Any], bus_name: str) -> dict[str, Any]:
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event.get("detail", {})),
        "Resources": list(event.get("resources", [])),
        "EventBusName": bus_name,
    }
    if event.get("time"):
        entry["Time"] = event["time"]
    return entry


def _release(sqs: Any, letters: list[DeadLetter]) -> None:
    """Make messages we do not delete visible again now, rather than after HOLD_SECONDS."""
    for letter in letters:
        sqs.change_message_visibility(
            QueueUrl=letter.queue_url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0
        )
