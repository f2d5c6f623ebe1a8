"""Drains the rule queues into their targets: what EventBridge + Lambda/Step Functions do on AWS.

A failed delivery is retried (the message becomes visible again at once) up to the route's
attempts, then kept: written to the template's failure queue (the function's on-failure
destination or the rule's dead-letter queue, in AWS's message formats) and recorded in
`dead_letters`. Nothing is dropped.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.provision import Route

Deliver = Callable[[Route, Any], Any]

# The background threads long-poll (moto wakes a waiting ReceiveMessage as soon as a message arrives):
# no idle polling, no polling delay. stop() wakes them with this body, which is never an event.
LONG_POLL_SECONDS = 1
WAKE_UP = "local-dispatcher: wake up"
# While `busy()` says the foreground is under a burst (API requests waiting for a worker), a delivery
# waits for it to pass, this long at most: the requests get the CPU first, no event waits for long.
MAX_DEFER_SECONDS = 2.0
DEFER_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver one event to one target."""

    rule: str
    target: str
    detail_type: str
    event_id: str
    attempt: int
    outcome: str  # "ok", "retry" (failed, will be retried) or "dead" (failed, attempts used up)
    error: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    """An event whose delivery kept failing, with the last error."""

    rule: str
    target: str
    event: dict[str, Any]
    error: str
    attempts: int


class Dispatcher:
    """Polls every route queue and the capture queue; see the module docstring."""

    def __init__(
        self,
        sqs: Any,
        routes: list[Route],
        capture_queue_url: str,
        deliver: Deliver,
        poll_interval: float = 0.05,
        concurrency: int = 1,
    ) -> None:
        """`concurrency`: deliveries of one route in progress at once (Lambda runs an event's
        invocations side by side; 1 when the functions run in this process, one at a time anyway)."""
        self._sqs = sqs
        self._routes = list(routes)
        self._capture_queue_url = capture_queue_url
        self._deliver = deliver
        self._poll_interval = poll_interval
        self.concurrency = concurrency
        self.busy: Callable[[], bool] | None = None  # see MAX_DEFER_SECONDS
        self.never_deferred: frozenset[str] = frozenset()  # targets whose deliveries never wait for busy()
        # One batch per queue handled at a time (by its background thread or a test's drain). Receiving
        # needs no lock: SQS hands each message to one receiver.
        self._capture_lock = threading.Lock()
        self._route_locks = {route.queue_url: threading.Lock() for route in self._routes}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.delivered: list[Delivery] = []  # appended when an attempt has ended
        # (rule, target, event id) of every attempt, appended before the target runs: whatever a
        # target did is visible only after its attempt is here (its Delivery may still be on its way)
        self.started: list[tuple[str, str, str]] = []
        self.dead_letters: list[DeadLetter] = []
        self.events_seen: list[dict[str, Any]] = []
        self.errors: list[str] = []  # the background thread's own failures (never silent)

    # ------------------------------------------------------------------------------ polling
    def poll_once(self) -> int:
        """Receive and handle what is waiting now; return how many messages were handled."""
        handled = self.collect_events()
        for route in self._routes:
            handled += self._receive_and_serve(route)
        return handled

    def collect_events(self, wait_seconds: int = 0) -> int:
        """Record the events that reached a bus into events_seen, delivering nothing; return how many."""
        return self._capture(wait_seconds)

    def drain(self, timeout: float = 10.0, settle: float = 0.3) -> None:
        """Poll until nothing arrived for `settle` seconds; TimeoutError if still busy after `timeout`."""
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"events still arriving after {timeout} s")
            if self.poll_once():
                quiet_since = time.monotonic()
            else:
                time.sleep(self._poll_interval)

    def start(self) -> None:
        """Poll in background threads until stop(): one per route queue and one for the capture queue.

        One thread per queue, as each rule target is served independently on AWS: a slow target (the
        functions run one at a time, see local/lambdas.py) does not hold up the others, and the
        workflow's starts and the event capture keep up while the functions work.
        """
        if self._threads:
            return
        self._stopping.clear()
        pollers: list[tuple[str, Callable[[], int]]] = [
            ("capture", functools.partial(self.collect_events, wait_seconds=LONG_POLL_SECONDS))
        ]
        pollers += [
            (
                route.rule_name,
                functools.partial(self._receive_and_serve, route, wait_seconds=LONG_POLL_SECONDS),
            )
            for route in self._routes
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(poll,), name=f"local-dispatcher-{name}", daemon=True)
            for name, poll in pollers
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the background threads (waits for their current polls to finish)."""
        if not self._threads:
            return
        self._stopping.set()
        # Each thread may be waiting in a long poll: wake it rather than wait the poll out.
        for queue_url in (self._capture_queue_url, *self._route_locks):
            try:
                self._sqs.send_message(QueueUrl=queue_url, MessageBody=WAKE_UP)
            except Exception as error:  # the thread still ends after its poll, LONG_POLL_SECONDS at most
                self.errors.append(f"wake-up of {queue_url}: {error!r}")
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    @property
    def running(self) -> bool:
        """Whether the background threads are polling."""
        return bool(self._threads)

    def _run(self, poll: Callable[[], int]) -> None:
        while not self._stopping.is_set():
            try:
                poll()  # returns when messages arrived or after a long poll without any
            except Exception as error:  # keep polling; the failure is recorded, not swallowed
                self.errors.append(repr(error))
                self._stopping.wait(self._poll_interval)

    def _receive_and_serve(self, route: Route, wait_seconds: int = 0) -> int:
        # The (long) poll happens outside the lock, so a test's drain() is never held up by it.
        messages = self._receive(route.queue_url, wait_seconds)
        with self._route_locks[route.queue_url]:
            return self._serve(route, messages)

    # ----------------------------------------------------------------------------- handling
    def _receive(
        self, queue_url: str, wait_seconds: int, visibility_timeout: int | None = None
    ) -> list[dict[str, Any]]:
        """Up to 10 messages; a long poll when wait_seconds > 0. Wake-up messages are deleted here.

        With visibility_timeout=0 the messages stay visible to the next receive (a peek).
        """
        options = {} if visibility_timeout is None else {"VisibilityTimeout": visibility_timeout}
        messages: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["ApproximateReceiveCount"],
            WaitTimeSeconds=wait_seconds,
            **options,
        ).get("Messages", [])
        wake_ups = [message for message in messages if message["Body"] == WAKE_UP]
        self._delete(queue_url, wake_ups)
        return [message for message in messages if message["Body"] != WAKE_UP]

    def _capture(self, wait_seconds: int = 0) -> int:
        # The long poll only peeks; events are taken and recorded under one lock, so a caller of
        # collect_events() never misses an event another thread has taken but not yet recorded.
        if wait_seconds and not self._receive(self._capture_queue_url, wait_seconds, visibility_timeout=0):
            return 0
        with self._capture_lock:
            messages = self._receive(self._capture_queue_url, 0)
            self.events_seen.extend(json.loads(message["Body"]) for message in messages)
        self._delete(self._capture_queue_url, messages)
        return len(messages)

    def _serve(self, route: Route, messages: list[dict[str, Any]]) -> int:
        def serve_one(message: dict[str, Any]) -> bool:
            if route.target not in self.never_deferred:
                self._yield_to_foreground()
            event = json.loads(message["Body"])
            attempt = int(message["Attributes"]["ApproximateReceiveCount"])
            self.started.append((route.rule_name, route.target, str(event.get("id", ""))))
            try:
                self._deliver(route, _target_input(route, event))
            except Exception as error:
                self._failed(route, message, event, attempt, error)
                return False
            self._record(route, event, attempt, "ok")
            return True

        if self.concurrency > 1 and len(messages) > 1:
            with ThreadPoolExecutor(min(self.concurrency, len(messages))) as pool:
                served = list(pool.map(serve_one, messages))
        else:
            served = [serve_one(message) for message in messages]
        self._delete(route.queue_url, [m for m, ok in zip(messages, served, strict=True) if ok])
        return len(messages)

    def _yield_to_foreground(self) -> None:
        if self.busy is None:
            return
        deadline = time.monotonic() + MAX_DEFER_SECONDS
        while self.busy() and time.monotonic() < deadline and not self._stopping.is_set():
            time.sleep(DEFER_POLL_SECONDS)

    def _delete(self, queue_url: str, messages: list[dict[str, Any]]) -> None:
        # One request per batch: these SQS calls were a tenth of the engine's AWS calls. A crash before
        # it redelivers the batch, which the handlers tolerate (EventBridge is at-least-once too).
        if messages:
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            failed = self._sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
            if failed:
                self.errors.append(f"delete_message_batch {queue_url}: {failed}")

    def _failed(
        self, route: Route, message: dict[str, Any], event: dict[str, Any], attempt: int, error: Exception
    ) -> None:
        text = f"{type(error).__name__}: {error}"
        if attempt < route.max_attempts:  # visible again now: the next poll retries it
            self._record(route, event, attempt, "retry", text)
            self._sqs.change_message_visibility(
                QueueUrl=route.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
            return
        self._record(route, event, attempt, "dead", text)
        self._sqs.send_message(
            QueueUrl=route.failure_queue_url, **_failure_message(route, event, attempt, error)
        )
        self.dead_letters.append(DeadLetter(route.rule_name, route.target, event, text, attempt))
        self._sqs.delete_message(QueueUrl=route.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _record(
        self, route: Route, event: dict[str, Any], attempt: int, outcome: str, error: str | None = None
    ) -> None:
        self.delivered.append(
            Delivery(
                route.rule_name,
                route.target,
                str(event.get("detail-type", "")),
                str(event.get("id", "")),
                attempt,
                outcome,
                error,
            )
        )


def _target_input(route: Route, event: dict[str, Any]) -> Any:
    """Apply the target's Input / InputPath (InputTransformer is applied by moto)."""
    if route.input is not None:
        return json.loads(route.input)
    if route.input_path:
        value: Any = event
        for part in route.input_path.removeprefix("$").strip(".").split("."):
            value = value[part] if part else value
        return value
    return event


def _failure_message(route: Route, event: dict[str, Any], attempts: int, error: Exception) -> dict[str, Any]:
    """The message AWS would write: a Lambda on-failure record, or an EventBridge DLQ message."""
    if route.target_kind == "function":
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": str(event.get("id", "")),
                "functionArn": f"{route.target_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
        }
        return {"MessageBody": json.dumps(record)}
    attributes = {
        "RULE_ARN": route.rule_arn,
        "TARGET_ARN": route.target_arn,
        "ERROR_CODE": type(error).__name__,
        "ERROR_MESSAGE": str(error)[:256],
    }
    return {
        "MessageBody": json.dumps(event),
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    }
